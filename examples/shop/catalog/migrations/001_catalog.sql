CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    stock       BIGINT NOT NULL CHECK (stock >= 0)
);

-- One row per order: reserved, or released (a release that came first is remembered, so
-- a late reservation for the same order is refused).
CREATE TABLE reservations (
    order_id    TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE reservation_items (
    order_id   TEXT NOT NULL REFERENCES reservations(order_id),
    product_id TEXT NOT NULL REFERENCES products(id),
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

INSERT INTO products (id, name, price_cents, stock) VALUES
    ('sku-espresso',   'Espresso beans, 1 kg',      2490, 1000000),
    ('sku-grinder',    'Hand grinder',              8900,  100000),
    ('sku-kettle',     'Gooseneck kettle',          5900,  100000),
    ('sku-filter',     'Paper filters, 100',         450, 1000000),
    ('sku-limited',    'Limited edition mug',       1900,      10);
