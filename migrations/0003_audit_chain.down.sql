DROP INDEX IF EXISTS audit_chain;
DROP TABLE IF EXISTS audit_heads;
ALTER TABLE audit DROP COLUMN IF EXISTS chain_seq, DROP COLUMN IF EXISTS prev_hash, DROP COLUMN IF EXISTS hash;
DROP FUNCTION IF EXISTS truth_audit_hash(text, bigint, bytea, text, text, bigint, text, text, text, text, timestamptz, bytea);
