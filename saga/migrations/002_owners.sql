CREATE TABLE saga_owners (
	owner    TEXT PRIMARY KEY,
	instance TEXT NOT NULL,
	since    BIGINT NOT NULL,
	seen     BIGINT NOT NULL
);
