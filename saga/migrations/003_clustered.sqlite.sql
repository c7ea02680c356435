-- The saga tables keyed by their primary keys (WITHOUT ROWID): a row lives in the b-tree
-- of its key, not in a rowid table beside a separate index of that key, so recording a
-- step or a saga writes one b-tree instead of two, and a commit writes fewer pages. The
-- tables are rebuilt with the same columns and rows.
CREATE TABLE saga_instances_next (
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
) WITHOUT ROWID;
INSERT INTO saga_instances_next (id, name, status, step, state, error, owner, lease_until, created_at, updated_at)
	SELECT id, name, status, step, state, error, owner, lease_until, created_at, updated_at FROM saga_instances ORDER BY id;
DROP TABLE saga_instances;
ALTER TABLE saga_instances_next RENAME TO saga_instances;
CREATE INDEX saga_instances_active ON saga_instances (status) WHERE status IN ('running', 'compensating');
CREATE TABLE saga_steps_next (
	saga_id TEXT NOT NULL,
	step    INTEGER NOT NULL,
	phase   TEXT NOT NULL,
	name    TEXT NOT NULL,
	error   TEXT NOT NULL DEFAULT '',
	at      BIGINT NOT NULL,
	PRIMARY KEY (saga_id, step, phase)
) WITHOUT ROWID;
INSERT INTO saga_steps_next (saga_id, step, phase, name, error, at)
	SELECT saga_id, step, phase, name, error, at FROM saga_steps ORDER BY saga_id, step, phase;
DROP TABLE saga_steps;
ALTER TABLE saga_steps_next RENAME TO saga_steps;
CREATE TABLE saga_owners_next (
	owner    TEXT PRIMARY KEY,
	instance TEXT NOT NULL,
	since    BIGINT NOT NULL,
	seen     BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO saga_owners_next (owner, instance, since, seen) SELECT owner, instance, since, seen FROM saga_owners;
DROP TABLE saga_owners;
ALTER TABLE saga_owners_next RENAME TO saga_owners;
