CREATE TABLE outbox (
	seq        INTEGER PRIMARY KEY,
	id         TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	key        TEXT    NOT NULL DEFAULT '',
	payload    BLOB,
	headers    TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE TABLE outbox_lease (
	name       TEXT    PRIMARY KEY,
	owner      TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
);
