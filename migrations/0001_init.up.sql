-- 0001: the truth store. State, payload and detail bytes are opaque to the
-- store (the caller encodes them); they are kept as bytea.

-- One row per aggregate: the latest snapshot. revision is the compare-and-set
-- guard (invariant 6 in ARCHITECTURE.md).
CREATE TABLE snapshots (
    tenant     text        NOT NULL,
    kind       text        NOT NULL,
    id         text        NOT NULL,
    revision   bigint      NOT NULL CHECK (revision > 0),
    state      bytea       NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, kind, id)
);

-- Events waiting for (and, once published_at is set, done with) the relay.
-- seq orders the records; for one aggregate it follows the aggregate's commits
-- because commits to one aggregate serialise on its snapshot row.
CREATE TABLE outbox (
    seq            bigserial   PRIMARY KEY,
    event_id       text        NOT NULL UNIQUE,
    topic          text        NOT NULL,
    tenant         text        NOT NULL,
    aggregate_kind text        NOT NULL,
    aggregate_id   text        NOT NULL,
    revision       bigint      NOT NULL,
    type           text        NOT NULL,
    version        integer     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    producer       text        NOT NULL,
    correlation_id text        NOT NULL,
    causation_id   text        NOT NULL,
    payload        bytea       NOT NULL,
    published_at   timestamptz
);

-- The relay reads only unpublished records, in seq order.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Commands applied under a client idempotency key, per tenant.
CREATE TABLE idempotency (
    tenant       text        NOT NULL,
    key          text        NOT NULL,
    kind         text        NOT NULL,
    id           text        NOT NULL,
    command      text        NOT NULL,
    request_hash bytea       NOT NULL,
    revision     bigint      NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, key)
);

-- Who did what to which aggregate, and why. Append-only.
CREATE TABLE audit (
    seq            bigserial   PRIMARY KEY,
    tenant         text        NOT NULL,
    kind           text        NOT NULL,
    id             text        NOT NULL,
    revision       bigint      NOT NULL,
    actor          text        NOT NULL,
    action         text        NOT NULL,
    reason         text        NOT NULL,
    correlation_id text        NOT NULL,
    at             timestamptz NOT NULL,
    detail         bytea
);

CREATE INDEX audit_aggregate ON audit (tenant, kind, id, seq);

-- truth_abort aborts the statement (and so its transaction) with SQLSTATE
-- GL001 and the given message. The commit statement uses it to undo a batch
-- whose idempotency insert lost a race to a concurrent transaction.
CREATE FUNCTION truth_abort(msg text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'GL001', MESSAGE = msg;
END
$$;
