package embedded

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.SnapshotLister = (*Store)(nil)

// Snapshots implements truth.SnapshotLister. Snapshot keys lead with the
// tenant, so it scans every snapshot and keeps those of kind.
func (s *Store) Snapshots(ctx context.Context, kind string, fn func(truth.Snapshot) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	p := []byte{tagSnapshot}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return fmt.Errorf("embedded: snapshots: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := dec{b: it.Key()[1:]}
		key := truth.Key{Tenant: k.str(), Kind: k.str(), ID: k.str()}
		if k.err != nil || len(k.b) != 0 {
			return fmt.Errorf("%w: snapshot key %x", errCorrupt, it.Key())
		}
		if key.Kind != kind {
			continue
		}
		d := dec{b: it.Value()}
		snap := truth.Snapshot{Key: key, Revision: d.i64(), UpdatedAt: d.time(), State: d.bytes()}
		if d.err != nil {
			return fmt.Errorf("embedded: snapshot %s/%s/%s: %w", key.Tenant, key.Kind, key.ID, d.err)
		}
		if err := fn(snap); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("embedded: snapshots: %w", err)
	}
	return nil
}
