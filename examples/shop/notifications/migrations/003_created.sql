-- The digest counts the notifications created before its tick every 30 s: without an
-- index on created_at that was a scan of the whole table (every column of every row),
-- growing with it. The index answers the count from its own pages (covering: created_at
-- and the key), and it grows at one end, as created_at follows the clock.
CREATE INDEX notifications_created ON notifications (created_at);
