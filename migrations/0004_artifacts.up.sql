-- 0004: artifacts. Immutable, content-addressed blobs (rendered quote
-- documents) owned by one tenant: the key is (tenant, sha256), so the same
-- bytes stored by two tenants are two rows and a tenant's reads never reach
-- another's. The checks repeat the store's own validation (truth.Artifact)
-- so that no other writer can store bytes under a digest they do not have.
CREATE TABLE artifacts (
    tenant     text        NOT NULL,
    sha256     text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type text        NOT NULL CHECK (media_type <> ''),
    bytes      bytea       NOT NULL CHECK (octet_length(bytes) <= 10485760),
    created_at timestamptz NOT NULL,
    created_by text        NOT NULL,
    PRIMARY KEY (tenant, sha256),
    CHECK (encode(sha256(bytes), 'hex') = sha256)
);

-- Rendered documents are compressed already: store them out of line without
-- trying to compress them again.
ALTER TABLE artifacts ALTER COLUMN bytes SET STORAGE EXTERNAL;
