CREATE TABLE schedule_runs (
	job         TEXT NOT NULL,
	tick        BIGINT NOT NULL,
	holder      TEXT NOT NULL,
	claimed_at  BIGINT NOT NULL,
	finished_at BIGINT,
	error       TEXT,
	PRIMARY KEY (job, tick)
);
