-- Which request revoked a key: a fresh id per revoke (`revoke_` and a ULID), written with
-- revoked_at. The D1 client may resend a batch whose answer was lost, so a revoke tells its own
-- earlier run (same id: 204) from another request's revoke (another id: 404), even in the same
-- millisecond. Keys revoked before this column existed keep it NULL.
ALTER TABLE api_keys ADD COLUMN revoked_by TEXT;
