-- One row per event received: the message id makes a redelivered event a no-op.
CREATE TABLE notifications (
    message_id TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    customer   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_order ON notifications (order_id);

CREATE TABLE digests (
    tick        BIGINT PRIMARY KEY,
    sent        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
