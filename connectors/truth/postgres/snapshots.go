package postgres

import (
	"context"
	"fmt"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.SnapshotLister = (*Store)(nil)

// Snapshots implements truth.SnapshotLister with one query, read row by row.
func (s *Store) Snapshots(ctx context.Context, kind string, fn func(truth.Snapshot) error) error {
	rows, err := s.pool.Query(ctx, `SELECT tenant, id, revision, state, updated_at FROM snapshots
WHERE kind = $1 ORDER BY tenant, id`, kind)
	if err != nil {
		return fmt.Errorf("postgres: snapshots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		snap := truth.Snapshot{Key: truth.Key{Kind: kind}}
		if err := rows.Scan(&snap.Key.Tenant, &snap.Key.ID, &snap.Revision, &snap.State, &snap.UpdatedAt); err != nil {
			return fmt.Errorf("postgres: snapshots: %w", err)
		}
		snap.UpdatedAt = snap.UpdatedAt.UTC()
		if err := fn(snap); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: snapshots: %w", err)
	}
	return nil
}
