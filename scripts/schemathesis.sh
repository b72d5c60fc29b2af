#!/usr/bin/env bash
# Runs schemathesis (property-based API tests from PyPI) against the whole API on the embedded
# default, as described by openapi.yaml, and fails on any 5xx or any response the document does not
# describe (status, content type, headers, body schema), on schema-violating requests that are
# accepted, and on routes that ignore their key.
#
#   ./scripts/schemathesis.sh                 # what CI runs
#   IMGBT_SCHEMATHESIS_EXAMPLES=200 ./scripts/schemathesis.sh   # longer
#   IMGBT_SCHEMATHESIS_SEED=random ./scripts/schemathesis.sh    # other inputs than CI's
#
# Steps: installs schemathesis and openapi-spec-validator (pinned) into a virtual environment under
# the cargo target directory (override with IMGBT_SCHEMATHESIS_VENV), validates openapi.yaml, builds
# and starts `local-api` (tests/src/bin/local-api.rs) on a free port of 127.0.0.1 with a fresh store
# and the dev vault's well-known keys, runs every phase (examples, coverage, fuzzing, stateful via
# the document's links) with the secret key as bearer token, then again on a fresh server with the
# public key (half the examples), and stops the server on exit.
#
# Checks left out, and why:
# - positive_data_acceptance: some rules cannot be written in JSON Schema (metadata and tags are JSON
#   inside multipart text fields; filenames are limited in UTF-8 bytes after NFC; the tag limit
#   counts tags after repeats are removed; metadata is limited in serialised bytes), so some inputs
#   the document admits are rightly 400.
# - unsupported_method: it expects 405; the API answers a method a path does not serve with its
#   404 NOT_FOUND envelope (docs/API.md#route-matching), which API Gateway's routing also gives.
# negative_data_rejection is off for the multipart upload only: its fields are text, so a "wrong
# type" such as the integer 0 for `partition` is sent as the valid text "0".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
examples="${IMGBT_SCHEMATHESIS_EXAMPLES:-40}"
seed="${IMGBT_SCHEMATHESIS_SEED:-20261126}"

target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
venv="${IMGBT_SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}"
[[ "$venv" == /* ]] || venv="$root/$venv"

installed() { "$venv/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating $venv"
    python3 -m venv "$venv"
fi
if [[ "$(installed schemathesis)" != "$SCHEMATHESIS_VERSION" ||
    "$(installed openapi-spec-validator)" != "$VALIDATOR_VERSION" ]]; then
    echo "==> pip install schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$VALIDATOR_VERSION"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$VALIDATOR_VERSION"
fi

echo "==> openapi-spec-validator openapi.yaml"
"$venv/bin/openapi-spec-validator" openapi.yaml

echo "==> cargo build -p imgbt-tests --bin local-api"
cargo build -q -p imgbt-tests --bin local-api

work="$(mktemp -d)"
server=""
stop_server() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

seed_args=()
[[ "$seed" == random ]] || seed_args=(--seed "$seed")

# One pass per key kind, each on a fresh store: with the secret key every route can succeed; with
# the public key writes are 403, and the dev vault's open upload stays open for `receive`.
pass() {
    local kind="$1" examples="$2" dir="$work/$1"
    mkdir -p "$dir"
    "$target_dir/debug/local-api" --data-dir "$dir/data" >"$dir/api.json" 2>"$dir/api.log" &
    server=$!
    for _ in $(seq 1 100); do
        [[ -s "$dir/api.json" ]] && break
        if ! kill -0 "$server" 2>/dev/null; then
            echo "local-api exited before listening:" >&2
            cat "$dir/api.log" >&2
            return 1
        fi
        sleep 0.1
    done
    local url vault_id
    read -r url vault_id IMGBT_SCHEMATHESIS_KEY < <(python3 -c '
import json, sys
api = json.loads(open(sys.argv[1]).readline())
print(api["url"], api["vault_id"], api[sys.argv[2] + "_key"])' "$dir/api.json" "$kind")
    export IMGBT_SCHEMATHESIS_KEY
    echo "==> local-api on $url (dev vault $vault_id)"

    # The vault is pinned: a key opens one vault, and any other vault id is 403 before anything
    # else is looked at (the contract suite proves that), so random vault ids would test nothing
    # further.
    cat >"$dir/schemathesis.toml" <<EOF
[auth.openapi.bearerAuth]
bearer = "\${IMGBT_SCHEMATHESIS_KEY}"

[parameters]
"path.vaultId" = "$vault_id"

# Every check runs but these two (see the top of this script). The selection lives here, not in
# --checks: checks named on the command line would override the per-operation setting below.
[checks]
positive_data_acceptance.enabled = false
unsupported_method.enabled = false
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 409, 410, 413]

[[operations]]
include-operation-id = "uploadAsset"
checks.negative_data_rejection.enabled = false
EOF

    echo "==> schemathesis run openapi.yaml with the $kind key (at most $examples examples per operation)"
    local status=0
    (
        cd "$dir"
        timeout 600 "$venv/bin/schemathesis" --no-color --config-file "$dir/schemathesis.toml" \
            run "$root/openapi.yaml" --url "$url" \
            --max-examples "$examples" "${seed_args[@]}" \
            --request-timeout 30 --generation-database none
    ) || status=$?
    stop_server
    if ((status != 0)); then
        echo "schemathesis failed (exit $status) with the $kind key; the server's log:" >&2
        tail -n 50 "$dir/api.log" >&2
        return "$status"
    fi
}

pass secret "$examples"
pass public "$(((examples + 1) / 2))"
echo "==> schemathesis passed"
