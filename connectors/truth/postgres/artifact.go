package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.ArtifactStore = (*Store)(nil)

// PutArtifact implements truth.ArtifactStore: one INSERT into artifacts
// (migration 0004) that does nothing when the tenant already holds the
// digest. The table's checks repeat the digest and size rules server-side.
func (s *Store) PutArtifact(ctx context.Context, a truth.Artifact) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO artifacts (tenant, sha256, media_type, bytes, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, sha256) DO NOTHING`,
		a.Tenant, a.SHA256, a.MediaType, a.Bytes, truth.TimerTime(a.CreatedAt), a.CreatedBy); err != nil {
		return fmt.Errorf("postgres: put artifact %s: %w", a.SHA256, err)
	}
	return nil
}

// GetArtifact implements truth.ArtifactStore.
func (s *Store) GetArtifact(ctx context.Context, tenant, sha string) (truth.Artifact, error) {
	a := truth.Artifact{Tenant: tenant, SHA256: sha}
	err := s.pool.QueryRow(ctx,
		`SELECT media_type, bytes, created_at, created_by FROM artifacts WHERE tenant = $1 AND sha256 = $2`,
		tenant, sha).Scan(&a.MediaType, &a.Bytes, &a.CreatedAt, &a.CreatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return truth.Artifact{}, fmt.Errorf("%w: artifact %s in tenant %s", truth.ErrNotFound, sha, tenant)
	}
	if err != nil {
		return truth.Artifact{}, fmt.Errorf("postgres: get artifact %s: %w", sha, err)
	}
	a.CreatedAt = a.CreatedAt.UTC()
	if a.Bytes == nil {
		a.Bytes = []byte{}
	}
	return a, nil
}
