-- imgbt schema, version 1.
-- Plain SQL in wrangler's migration format: `wrangler d1 migrations apply` and `imgbt migrate`
-- both run it and record it in d1_migrations. One statement per `;` at the end of a line.

CREATE TABLE vaults (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Keys are stored only as the SHA-256 of the whole key string. `hint` is the kind prefix and the
-- first four characters, enough to tell keys apart in `imgbt key list`.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    vault_id   TEXT NOT NULL REFERENCES vaults (id),
    kind       TEXT NOT NULL CHECK (kind IN ('public', 'secret')),
    key_hash   TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE INDEX api_keys_vault ON api_keys (vault_id);

-- Times are RFC 3339 UTC with milliseconds (fixed width), so text order is time order.
CREATE TABLE assets (
    id         TEXT PRIMARY KEY,
    vault_id   TEXT NOT NULL REFERENCES vaults (id),
    partition  TEXT NOT NULL,
    collection TEXT NOT NULL,
    channel    TEXT NOT NULL,
    filename   TEXT NOT NULL,
    r2_key     TEXT NOT NULL UNIQUE,
    size       INTEGER NOT NULL,
    mime_type  TEXT NOT NULL,
    width      INTEGER,
    height     INTEGER,
    metadata   TEXT NOT NULL DEFAULT '{}',
    tags       TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (vault_id, partition, collection, channel, filename)
);

-- List order is (created_at DESC, id DESC) within a vault; one index per filter shape keeps a page at
-- any depth a short index range scan.
CREATE INDEX assets_vault_order ON assets (vault_id, created_at, id);
CREATE INDEX assets_partition_order ON assets (vault_id, partition, created_at, id);
CREATE INDEX assets_collection_order ON assets (vault_id, partition, collection, created_at, id);
CREATE INDEX assets_channel_order ON assets (vault_id, partition, collection, channel, created_at, id);

-- Objects whose record is gone. A delete writes its row in the same batch that removes the record,
-- so an object is never forgotten, whatever fails afterwards; `imgbt gc` and later deletes finish them.
CREATE TABLE pending_deletions (
    r2_key       TEXT PRIMARY KEY,
    requested_at TEXT NOT NULL
);
