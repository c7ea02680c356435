-- Sequence numbers that SQLite never hands out again, even after the rows with the
-- highest ones were deleted (AUTOINCREMENT): with the relay's cursor (002), a number handed
-- out again below the cursor would pass for sent. The table is rebuilt with the same
-- columns and rows, and numbering goes on above both its highest row and the cursor.
CREATE TABLE outbox_next (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	key        TEXT    NOT NULL DEFAULT '',
	payload    BLOB,
	headers    TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	sent_at    INTEGER
);
INSERT INTO outbox_next (seq, id, subject, key, payload, headers, created_at, sent_at)
	SELECT seq, id, subject, key, payload, headers, created_at, sent_at FROM outbox ORDER BY seq;
DROP TABLE outbox;
ALTER TABLE outbox_next RENAME TO outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox';
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'outbox', MAX(COALESCE((SELECT MAX(seq) FROM outbox), 0), COALESCE((SELECT seq FROM outbox_cursor WHERE name = 'relay'), 0));
