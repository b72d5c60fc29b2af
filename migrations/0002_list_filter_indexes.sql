-- Lists filtered by collection alone or channel alone (without the levels above them) had no
-- index of their own: they walked the vault's order index and checked every row, so a rare
-- value cost a scan per page. With these, every filter shape is one index range scan.
CREATE INDEX assets_collection_only_order ON assets (vault_id, collection, created_at, id);
CREATE INDEX assets_channel_only_order ON assets (vault_id, channel, created_at, id);
