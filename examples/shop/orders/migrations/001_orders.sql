CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    customer    TEXT NOT NULL,
    status      TEXT NOT NULL,           -- pending, confirmed, cancelled
    total_cents BIGINT NOT NULL DEFAULT 0,
    items       TEXT NOT NULL,           -- JSON array of {productId, quantity}
    reason      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
