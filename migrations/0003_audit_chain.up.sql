-- 0003: the per-tenant audit hash chain (ADR 0014). Each audit row gets
-- chain_seq (1, 2, ... per tenant, no gaps), prev_hash (the hash of the
-- tenant's record at chain_seq - 1; empty for 1) and hash. audit_heads holds
-- each tenant's last link; a commit locks its tenants' head rows (in tenant
-- order) and moves them in the same transaction as the records, so that
-- concurrent commits on several nodes queue instead of forking the chain.

-- truth_audit_hash is the canonical hash, the same as truth.AuditHash in Go:
-- SHA-256 over fields each written as a 4-byte big-endian length and the
-- bytes; integers as 8-byte big-endian; at as UTC with six fractional digits.
CREATE FUNCTION truth_audit_hash(tenant text, chain_seq bigint, prev_hash bytea, kind text, id text,
                                 revision bigint, actor text, action text, reason text,
                                 correlation_id text, at timestamptz, detail bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(
        int4send(18) || convert_to('grainline.audit.v1', 'UTF8') ||
        int4send(octet_length(tenant)) || convert_to(tenant, 'UTF8') ||
        int4send(8) || int8send(chain_seq) ||
        int4send(octet_length(prev_hash)) || prev_hash ||
        int4send(octet_length(kind)) || convert_to(kind, 'UTF8') ||
        int4send(octet_length(id)) || convert_to(id, 'UTF8') ||
        int4send(8) || int8send(revision) ||
        int4send(octet_length(actor)) || convert_to(actor, 'UTF8') ||
        int4send(octet_length(action)) || convert_to(action, 'UTF8') ||
        int4send(octet_length(reason)) || convert_to(reason, 'UTF8') ||
        int4send(octet_length(correlation_id)) || convert_to(correlation_id, 'UTF8') ||
        int4send(27) || convert_to(to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8') ||
        int4send(coalesce(octet_length(detail), 0)) || coalesce(detail, '\x'::bytea))
$$;

ALTER TABLE audit
    ADD COLUMN chain_seq bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash      bytea;

CREATE TABLE audit_heads (
    tenant    text   PRIMARY KEY,
    chain_seq bigint NOT NULL CHECK (chain_seq >= 0),
    hash      bytea  NOT NULL
);

-- Chain the rows already there, per tenant in the order they were written.
DO $$
DECLARE
    r    record;
    cur  text := NULL;
    n    bigint := 0;
    prev bytea := '\x';
    h    bytea;
BEGIN
    FOR r IN SELECT * FROM audit ORDER BY tenant, seq LOOP
        IF cur IS DISTINCT FROM r.tenant THEN
            IF cur IS NOT NULL THEN
                INSERT INTO audit_heads VALUES (cur, n, prev);
            END IF;
            cur := r.tenant; n := 0; prev := '\x';
        END IF;
        n := n + 1;
        h := truth_audit_hash(r.tenant, n, prev, r.kind, r.id, r.revision, r.actor, r.action, r.reason,
                              r.correlation_id, r.at, r.detail);
        UPDATE audit SET chain_seq = n, prev_hash = prev, hash = h WHERE seq = r.seq;
        prev := h;
    END LOOP;
    IF cur IS NOT NULL THEN
        INSERT INTO audit_heads VALUES (cur, n, prev);
    END IF;
END
$$;

ALTER TABLE audit
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash      SET NOT NULL;

-- One record per (tenant, seq): a fork cannot be written, and the chain is
-- read in order through it.
CREATE UNIQUE INDEX audit_chain ON audit (tenant, chain_seq);
