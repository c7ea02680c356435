-- On SQLite, whose single writer commits rows in sequence order, the relay records how far
-- it has published in one row instead of marking every row sent: the rows above the cursor
-- are unsent. The cursor starts below the oldest row that was not marked sent yet (rows
-- above it that were marked sent are published again; JetStream drops them as duplicates
-- within its window). The partial indexes on sent_at are not needed any more.
CREATE TABLE outbox_cursor (
	name TEXT    PRIMARY KEY,
	seq  INTEGER NOT NULL
);
INSERT INTO outbox_cursor (name, seq)
	SELECT 'relay', COALESCE((SELECT MIN(seq) FROM outbox WHERE sent_at IS NULL) - 1, (SELECT MAX(seq) FROM outbox), 0);
DROP INDEX outbox_unsent;
DROP INDEX outbox_sent;
