-- A vault's delivery (docs/API.md#delivery): 'public' (anyone with the URL) or 'signed' (a URL
-- carries an expiry and an HMAC made with the vault's delivery secret). The secret is an HMAC key,
-- so it is kept as it is (a digest could not sign); it never leaves the store in an answer, an
-- error or a log. During a rotation the previous secret is still accepted, so URLs already handed
-- out keep working until they expire.
ALTER TABLE vaults ADD COLUMN delivery TEXT NOT NULL DEFAULT 'public' CHECK (delivery IN ('public', 'signed'));
ALTER TABLE vaults ADD COLUMN delivery_secret TEXT;
ALTER TABLE vaults ADD COLUMN delivery_secret_previous TEXT;
ALTER TABLE vaults ADD COLUMN delivery_secret_rotated_at TEXT;
