-- 0002: durable timers. One row per (aggregate, timer id), set and cancelled
-- in the same transaction as the aggregate's snapshot. Pollers claim due
-- timers with FOR UPDATE SKIP LOCKED and a short lease (leased_until), so
-- that several nodes never fire one timer in a hot loop.
CREATE TABLE timers (
    tenant       text        NOT NULL,
    kind         text        NOT NULL,
    id           text        NOT NULL,
    timer_id     text        NOT NULL,
    due_at       timestamptz NOT NULL,
    command      text        NOT NULL,
    payload      bytea       NOT NULL,
    leased_until timestamptz,
    PRIMARY KEY (tenant, kind, id, timer_id)
);

-- Pollers read timers in due order.
CREATE INDEX timers_due ON timers (due_at, tenant, kind, id, timer_id);
