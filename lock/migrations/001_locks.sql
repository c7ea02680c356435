CREATE TABLE locks (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	token      BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
