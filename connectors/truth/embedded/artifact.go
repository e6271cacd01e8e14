package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.ArtifactStore = (*Store)(nil)

func artifactKey(tenant, sha string) []byte {
	b := make([]byte, 0, 3+len(tenant)+len(sha))
	b = append(b, tagArtifact)
	b = appendLP(b, tenant)
	return appendLP(b, sha)
}

// PutArtifact implements truth.ArtifactStore: one synced write, skipped when
// the tenant already holds the digest. Puts are serialised by their own
// mutex (not Commit's), so a large artifact never delays a commit batch.
func (s *Store) PutArtifact(ctx context.Context, a truth.Artifact) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	k := artifactKey(a.Tenant, a.SHA256)
	s.artMu.Lock()
	defer s.artMu.Unlock()
	if ok, err := s.has(k); err != nil {
		return fmt.Errorf("embedded: put artifact: %w", err)
	} else if ok {
		return nil
	}
	var e enc
	e.str(a.MediaType)
	e.time(truth.TimerTime(a.CreatedAt))
	e.str(a.CreatedBy)
	e.str(string(a.Bytes))
	if err := s.db.Set(k, e.b, pebble.Sync); err != nil {
		return fmt.Errorf("embedded: put artifact: %w", err)
	}
	return nil
}

// GetArtifact implements truth.ArtifactStore.
func (s *Store) GetArtifact(ctx context.Context, tenant, sha string) (truth.Artifact, error) {
	if err := s.enter(); err != nil {
		return truth.Artifact{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return truth.Artifact{}, err
	}
	v, closer, err := s.db.Get(artifactKey(tenant, sha))
	if errors.Is(err, pebble.ErrNotFound) {
		return truth.Artifact{}, fmt.Errorf("%w: artifact %s in tenant %s", truth.ErrNotFound, sha, tenant)
	}
	if err != nil {
		return truth.Artifact{}, fmt.Errorf("embedded: get artifact: %w", err)
	}
	defer closer.Close()
	d := dec{b: v}
	a := truth.Artifact{Tenant: tenant, SHA256: sha, MediaType: d.str(), CreatedAt: d.time(), CreatedBy: d.str()}
	a.Bytes = append([]byte{}, d.raw()...)
	if d.err != nil {
		return truth.Artifact{}, fmt.Errorf("embedded: get artifact %s: %w", sha, d.err)
	}
	return a, nil
}
