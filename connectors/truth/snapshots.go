package truth

import "context"

// SnapshotLister walks the stored snapshots of one aggregate kind across
// tenants, for operator reports (e.g. `grainline admin plans`); both adapters
// implement it. It reads what is committed while it walks and is no
// consistent point-in-time view.
type SnapshotLister interface {
	// Snapshots calls fn for every snapshot of kind, in an order of the
	// store's choosing, and stops at fn's first error, which it returns.
	Snapshots(ctx context.Context, kind string, fn func(Snapshot) error) error
}
