-- Direct uploads: POST …/uploads writes one row and hands out a URL the client PUTs the bytes to;
-- POST …/uploads/{id}/complete checks the object and inserts the asset, then marks the row done.
-- The row fixes the asset's id and object key in advance, so the bytes land where the record
-- will point. `imgbt gc` removes rows (and their objects) that expired without being completed.
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    vault_id     TEXT NOT NULL REFERENCES vaults (id),
    asset_id     TEXT NOT NULL UNIQUE,
    partition    TEXT NOT NULL,
    collection   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    filename     TEXT NOT NULL,
    r2_key       TEXT NOT NULL UNIQUE,
    size         INTEGER NOT NULL,
    mime_type    TEXT NOT NULL,
    metadata     TEXT NOT NULL DEFAULT '{}',
    tags         TEXT NOT NULL DEFAULT '[]',
    token_hash   TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    completed_at TEXT
);

-- What gc looks for: uploads never completed, oldest expiry first.
CREATE INDEX uploads_open_expiry ON uploads (expires_at) WHERE completed_at IS NULL;
