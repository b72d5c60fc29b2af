#!/usr/bin/env python3
"""Writes the sample events in this directory: API Gateway HTTP API, payload format 2.0, and for
a function on a schedule (gc) the EventBridge "Scheduled Event" that invokes it.

    python3 events/make.py

Each event is what API Gateway sends to the function for one request, against the dev vault that
`imgbt dev seed` creates (fixed id, well-known keys, one sample asset: see imgbt_cli::dev::seed_dev).
The files are committed; run this again only to change them. Output is deterministic.
"""

import base64
import json
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures"

# The registry of functions: each event takes its method and route from its function's entry.
with open(HERE.parent / "functions.toml", "rb") as registry:
    FUNCTIONS = {f["name"]: f for f in tomllib.load(registry)["function"]}


def route_of(function):
    """(method, path) of the route `function` serves; for several methods of one path (deliver's
    GET and HEAD), the first."""
    routes = [r.split(" ", 1) for r in FUNCTIONS[function]["routes"]]
    if len({path for _, path in routes}) != 1:
        raise SystemExit(f"{function} serves {len(routes)} paths; say which one")
    method, path = routes[0]
    return method, path

# imgbt_cli::dev::{DEV_VAULT_ID, DEV_PUBLIC_KEY, DEV_SECRET_KEY, DEV_ASSET_ID}
VAULT = "vault_01DEVDEVDEVDEVDEVDEVDEVDEV"
PK = "pk_facadefacadefacadefacadefacadefacadefacadefacade"
SK = "sk_decadedecadedecadedecadedecadedecadedecadedecade"
ASSET = "asset_01DEVDEVDEVDEVDEVDEV0ASSET"
# Shaped like a key, but no vault has it.
UNKNOWN_KEY = "sk_0123456789abcdef0123456789abcdef0123456789abcdef"
# A well-formed asset id that does not exist.
UNKNOWN_ASSET = "asset_01DEVDEVDEVDEVDEVDEVN0NE00"
# A well-formed vault id that is not the dev vault.
OTHER_VAULT = "vault_01DEVDEVDEVDEVDEVDEV0THER0"

# imgbt_cli::dev::{DEV_UPLOAD_ID, DEV_UPLOAD_TOKEN, DEV_UPLOAD_BYTES}: the dev vault's open direct
# upload, its receive URL's token, and its bytes.
DEV_UPLOAD = "upload_01DEVDEVDEVDEVDEVDEV0XFER0"
DEV_UPLOAD_TOKEN = "feedfacefeedfacefeedfacefeedfacefeedfacefeedface"
DEV_UPLOAD_BYTES = b"Hello from a direct upload!\n"
UNKNOWN_UPLOAD = "upload_01DEVDEVDEVDEVDEVDEVN0NE00"

# imgbt_cli::dev::{DEV_PUBLIC_KEY_ID, DEV_SECRET_KEY_ID}: the ids of PK and SK.
PK_ID = "key_01DEVDEVDEVDEVDEVDEVDEV0PK"
SK_ID = "key_01DEVDEVDEVDEVDEVDEVDEV0SK"
UNKNOWN_KEY_ID = "key_01DEVDEVDEVDEVDEVDEVN0NE00"

API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.eu-west-1.amazonaws.com"
USER_AGENT = "curl/8.5.0"
BOUNDARY = "------------------------imgbtDevEventBoundary7MA4"


def multipart(fields, file_name, content_type, data):
    """A multipart/form-data body as curl -F sends it: text fields, then the file."""
    out = b""
    for name, value in fields:
        out += f"--{BOUNDARY}\r\n".encode()
        out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f"--{BOUNDARY}\r\n".encode()
    out += f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'.encode()
    out += f"Content-Type: {content_type}\r\n\r\n".encode()
    out += data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return out


def event(n, function, vault=VAULT, asset=None, key=None, query="", body=None,
          content_type=None, binary=False, upload=None, key_id=None, hierarchy=None,
          extra_headers=None):
    """One payload-2.0 event for `function`'s route. `n` makes the request id and time unique
    per file. `hierarchy`: a delivery's (partition, collection, channel, filename)."""
    method, route = route_of(function)
    path = (route.replace("{vaultId}", vault).replace("{assetId}", asset or "")
            .replace("{uploadId}", upload or "").replace("{keyId}", key_id or ""))
    hierarchy_params = {}
    if hierarchy is not None:
        names = ["partition", "collection", "channel", "filename"]
        hierarchy_params = dict(zip(names, hierarchy))
        for name, value in hierarchy_params.items():
            path = path.replace("{" + name + "}", value)
    headers = {
        "accept": "*/*",
        "host": DOMAIN,
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": f"Root=1-6926a000-0000000000000000000000{n:02d}",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    headers.update(extra_headers or {})
    if body is not None:
        raw = body if isinstance(body, bytes) else body.encode()
        headers["content-length"] = str(len(raw))
        headers["content-type"] = content_type
    params = {"vaultId": vault}
    if asset is not None:
        params["assetId"] = asset
    if upload is not None:
        params["uploadId"] = upload
    if key_id is not None:
        params["keyId"] = key_id
    params.update(hierarchy_params)
    epoch = 1795000000000 + n * 1000
    ev = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": dict(sorted(headers.items())),
    }
    if query:
        pairs = [p.split("=", 1) for p in query.split("&")]
        ev["queryStringParameters"] = {k: v for k, v in pairs}
    ev["requestContext"] = {
        "accountId": "123456789012",
        "apiId": API_ID,
        "domainName": DOMAIN,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": USER_AGENT,
        },
        "requestId": f"Dev{n:02d}aBcDeFgHiJ=",
        "routeKey": f"{method} {route}",
        "stage": "$default",
        "time": f"18/Nov/2026:10:{n // 60:02d}:{n % 60:02d} +0000",
        "timeEpoch": epoch,
    }
    ev["pathParameters"] = params
    if body is not None:
        # The gateway base64-encodes every body that is not text (multipart included).
        ev["body"] = base64.b64encode(raw).decode() if binary else raw.decode()
    ev["isBase64Encoded"] = binary
    return ev


def upload(n, key, fields, file_name="hello.txt", content_type="text/plain",
           data=b"Hello again!\n"):
    body = multipart(fields, file_name, content_type, data)
    return event(n, "upload", key=key, body=body,
                 content_type=f"multipart/form-data; boundary={BOUNDARY}", binary=True)


def patch(n, key, doc, asset=ASSET):
    return event(n, "update", asset=asset, key=key, body=json.dumps(doc),
                 content_type="application/json")


def start(n, key, doc):
    return event(n, "uploads", key=key, body=json.dumps(doc),
                 content_type="application/json")


def receive(n, body, upload=DEV_UPLOAD, token=DEV_UPLOAD_TOKEN):
    return event(n, "receive", upload=upload, query=f"token={token}", body=body,
                 content_type="text/plain")


def scheduled(n, function):
    """The EventBridge event a schedule rule sends `function` (which serves no route)."""
    if "schedule" not in FUNCTIONS[function]:
        raise SystemExit(f"{function} runs on no schedule")
    return {
        "version": "0",
        "id": f"6926a000-0000-4000-8000-0000000000{n:02d}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": f"2026-11-18T10:{n // 60:02d}:{n % 60:02d}Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:events:eu-west-1:123456789012:rule/imgbt-{function}"],
        "detail": {},
    }


PNG = (FIXTURES / "tiny.png").read_bytes()
SAMPLE_PLACE = [("partition", "docs"), ("collection", "readme"), ("channel", "main")]

EVENTS = {
    # upload
    "upload.201.multipart": upload(1, SK, [
        ("partition", "marketing"), ("collection", "blog"), ("channel", "hero-images"),
        ("metadata", '{"alt":"One red pixel","credit":"imgbt"}'), ("tags", '["sample","png"]'),
    ], "pixel.png", "image/png", PNG),
    "upload.400.bad-partition": upload(2, SK, [
        ("partition", "Bad_Partition"), ("collection", "readme"), ("channel", "main"),
    ]),
    "upload.400.not-multipart": event(3, "upload", key=SK, body='{"file":"hello"}',
                                      content_type="application/json"),
    "upload.401.unknown-key": upload(4, UNKNOWN_KEY, SAMPLE_PLACE),
    "upload.403.public-key": upload(5, PK, SAMPLE_PLACE, "new.txt"),
    "upload.409.duplicate": upload(6, SK, SAMPLE_PLACE, "hello.txt"),
    # list
    "list.200.first-page": event(10, "list", key=PK, query="limit=10"),
    "list.200.filtered": event(11, "list", key=PK,
                               query="partition=docs&collection=readme&channel=main"),
    "list.400.limit-500": event(12, "list", key=PK, query="limit=500"),
    "list.400.bad-cursor": event(13, "list", key=PK, query="cursor=not-a-cursor"),
    "list.403.other-vault": event(14, "list", vault=OTHER_VAULT, key=PK),
    # get
    "get.200.sample": event(20, "get", asset=ASSET, key=PK),
    "get.401.missing-auth": event(21, "get", asset=ASSET),
    "get.404.unknown-asset": event(22, "get", asset=UNKNOWN_ASSET, key=PK),
    # update
    "update.200.merge": patch(30, SK, {"metadata": {"caption": "Hello, world", "alt": None},
                                       "tags": ["sample", "updated"]}),
    "update.400.unknown-member": patch(31, SK, {"name": "renamed.txt"}),
    "update.403.public-key": patch(32, PK, {"tags": ["nope"]}),
    "update.404.unknown-asset": patch(33, SK, {"tags": ["x"]}, asset=UNKNOWN_ASSET),
    # delete
    "delete.204.sample": event(40, "delete", asset=ASSET, key=SK),
    "delete.403.public-key": event(41, "delete", asset=ASSET, key=PK),
    "delete.404.unknown-asset": event(42, "delete", asset=UNKNOWN_ASSET, key=SK),
    # uploads (start a direct upload)
    "uploads.201.start": start(50, SK, {
        "partition": "docs", "collection": "readme", "channel": "large", "filename": "video.mp4",
        "size": 52428800, "mime_type": "video/mp4", "metadata": {"title": "Launch"},
        "tags": ["video"],
    }),
    "uploads.400.unknown-member": start(51, SK, {
        "partition": "docs", "collection": "readme", "channel": "main", "filename": "a.txt",
        "size": 1, "name": "a.txt",
    }),
    "uploads.403.public-key": start(52, PK, {
        "partition": "docs", "collection": "readme", "channel": "main", "filename": "a.txt",
        "size": 1,
    }),
    "uploads.409.duplicate": start(53, SK, {
        "partition": "docs", "collection": "readme", "channel": "main",
        "filename": "hello.txt", "size": 1,
    }),
    "uploads.413.too-large": start(54, SK, {
        "partition": "docs", "collection": "readme", "channel": "main", "filename": "huge.bin",
        "size": 104857601,
    }),
    # receive (the embedded default's PUT of the bytes; local only)
    "receive.200.bytes": receive(60, DEV_UPLOAD_BYTES.decode()),
    "receive.403.wrong-token": receive(61, DEV_UPLOAD_BYTES.decode(), token="0" * 48),
    "receive.404.unknown-upload": receive(62, "x", upload=UNKNOWN_UPLOAD),
    "receive.413.over-declared-size": receive(63, DEV_UPLOAD_BYTES.decode() * 2),
    # complete
    "complete.201.dev-upload": event(70, "complete", upload=DEV_UPLOAD, key=SK),
    "complete.403.public-key": event(71, "complete", upload=DEV_UPLOAD, key=PK),
    "complete.404.unknown-upload": event(72, "complete", upload=UNKNOWN_UPLOAD,
                                         key=SK),
    # content (download)
    "content.200.sample": event(80, "content", asset=ASSET, key=PK),
    "content.401.missing-auth": event(81, "content", asset=ASSET),
    "content.404.unknown-asset": event(82, "content", asset=UNKNOWN_ASSET, key=PK),
    # keys (the dev vault has PK and SK, its one secret key)
    "keys_list.200.secret-key": event(100, "keys_list", key=SK),
    "keys_list.403.public-key": event(101, "keys_list", key=PK),
    "key_create.201.secret": event(102, "key_create", key=SK,
                                   body=json.dumps({"label": "CI deploys", "type": "secret"}),
                                   content_type="application/json"),
    "key_create.400.unknown-type": event(103, "key_create", key=SK,
                                         body=json.dumps({"label": "CI", "type": "admin"}),
                                         content_type="application/json"),
    "key_revoke.204.public-key": event(104, "key_revoke", key=SK, key_id=PK_ID),
    "key_revoke.404.unknown-key": event(105, "key_revoke", key=SK, key_id=UNKNOWN_KEY_ID),
    "key_revoke.409.last-secret-key": event(106, "key_revoke", key=SK, key_id=SK_ID),
    # vault settings
    "vault_get.200.public-key": event(107, "vault_get", key=PK),
    "vault_get.403.other-vault": event(108, "vault_get", vault=OTHER_VAULT, key=PK),
    "vault_update.200.rename": event(109, "vault_update", key=SK,
                                     body=json.dumps({"name": "dev, renamed"}),
                                     content_type="application/merge-patch+json"),
    "vault_update.400.unknown-member": event(110, "vault_update", key=SK,
                                             body=json.dumps({"id": "vault_x"}),
                                             content_type="application/json"),
    # deliver (no key; the dev vault delivers publicly)
    "deliver.200.sample": event(111, "deliver",
                                hierarchy=("docs", "readme", "main", "hello.txt")),
    "deliver.206.range": event(112, "deliver", hierarchy=("docs", "readme", "main", "hello.txt"),
                               extra_headers={"range": "bytes=0-4"}),
    "deliver.404.unknown-path": event(113, "deliver",
                                      hierarchy=("docs", "readme", "main", "none.txt")),
    "deliver.416.past-the-end": event(114, "deliver",
                                      hierarchy=("docs", "readme", "main", "hello.txt"),
                                      extra_headers={"range": "bytes=1000-"}),
    # Transform parameters on the sample (docs/API.md#transforms). It is text, so a real
    # transform is a 400; parameters that change nothing (and an unknown cache-buster) serve the
    # original; a bad value is 400 before the asset is looked at.
    "deliver.200.no-op-transform": event(119, "deliver",
                                         hierarchy=("docs", "readme", "main", "hello.txt"),
                                         query="grayscale=false&v=2"),
    "deliver.400.bad-parameter": event(120, "deliver",
                                       hierarchy=("docs", "readme", "main", "hello.txt"),
                                       query="w=0"),
    "deliver.400.not-an-image": event(121, "deliver",
                                      hierarchy=("docs", "readme", "main", "hello.txt"),
                                      query="w=400&format=webp"),
    # asset_url (any key) and delivery_rotate (a secret key)
    "asset_url.200.public-key": event(115, "asset_url", asset=ASSET, key=PK),
    "asset_url.400.expires-too-long": event(116, "asset_url", asset=ASSET, key=PK,
                                            query="expires=604801"),
    "delivery_rotate.200.secret-key": event(117, "delivery_rotate", key=SK),
    "delivery_rotate.403.public-key": event(118, "delivery_rotate", key=PK),
    # gc (the scheduled sweep): 200 stands for an invocation that answers its report
    "gc.200.scheduled": scheduled(90, "gc"),
}


def main():
    for old in HERE.glob("*.json"):
        old.unlink()
    for name, ev in EVENTS.items():
        (HERE / f"{name}.json").write_text(json.dumps(ev, indent=2) + "\n")
    print(f"wrote {len(EVENTS)} events to {HERE}")


if __name__ == "__main__":
    main()
