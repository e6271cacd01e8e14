-- 0005: fulfillment attempt records. The worker writes a row before every
-- call towards an external system (outcome 'started') and completes it
-- after (succeeded, rejected, technical or unknown). A row left 'started'
-- means the worker stopped mid-call: the next worker queries the system by
-- external_key before it calls again.
CREATE TABLE attempts (
    tenant       text        NOT NULL,
    task_id      text        NOT NULL,
    n            integer     NOT NULL CHECK (n > 0),
    order_id     text        NOT NULL,
    system       text        NOT NULL,
    operation    text        NOT NULL,
    external_key text        NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('started', 'succeeded', 'rejected', 'technical', 'unknown')),
    detail       text        NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    PRIMARY KEY (tenant, task_id, n)
);
