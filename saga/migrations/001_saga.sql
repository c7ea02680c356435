CREATE TABLE saga_instances (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	status      TEXT NOT NULL,
	step        INTEGER NOT NULL,
	state       TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	owner       TEXT NOT NULL,
	lease_until BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);
CREATE INDEX saga_instances_active ON saga_instances (status) WHERE status IN ('running', 'compensating');
CREATE TABLE saga_steps (
	saga_id TEXT NOT NULL,
	step    INTEGER NOT NULL,
	phase   TEXT NOT NULL,
	name    TEXT NOT NULL,
	error   TEXT NOT NULL DEFAULT '',
	at      BIGINT NOT NULL,
	PRIMARY KEY (saga_id, step, phase)
);
