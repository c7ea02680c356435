-- A refund that arrives before its charge — the order saga gave up on a charge that was
-- still in flight and compensated — leaves a 'voided' row without an amount, so that the
-- late charge is refused instead of taking money for a cancelled order. SQLite cannot
-- change a CHECK constraint in place, so the table is rebuilt.
CREATE TABLE payments_v2 (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL UNIQUE,
    customer     TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    status       TEXT NOT NULL,          -- charged, declined, refunded, voided
    reason       TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
INSERT INTO payments_v2 (id, order_id, customer, amount_cents, status, reason, created_at, updated_at)
    SELECT id, order_id, customer, amount_cents, status, reason, created_at, updated_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_v2 RENAME TO payments;
