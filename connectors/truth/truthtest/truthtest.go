// Package truthtest is the conformance suite every truth.Store adapter passes,
// plus the kill -9 crash harness and a commit benchmark they share.
//
// An adapter's test file calls:
//
//	func TestConformance(t *testing.T) { truthtest.Run(t, harness) }
//	func TestCrash(t *testing.T)       { truthtest.Crash(t, harness, "TestCrashChild") }
//	func TestCrashChild(t *testing.T)  { truthtest.CrashChild(t, harness) }
//
// A store behind a server sets Harness.Settle and, where it can read one
// consistent state, Harness.View: a kill does not stop the server from
// committing the batch in flight, and truth.Store has no read that sees
// snapshots and outbox at one instant (see Crash).
//
// Batch semantics the suite pins down (both adapters agree):
//   - commits in a batch are applied in order, and each sees the successful
//     commits before it: two commits to one aggregate chain when the second
//     expects the first's revision, and the second conflicts otherwise;
//   - the first commit of a batch to record an idempotency key wins; later
//     ones get ErrIdempotencyConflict (unless the first failed);
//   - the idempotency key is checked before the revision: a repeated command
//     reports ErrIdempotencyConflict even when its revision is stale too.
package truthtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// Harness tells the suite how to make and open stores of one adapter.
type Harness struct {
	// NewLocation prepares a fresh, empty store location (a directory, a
	// migrated database's DSN) that lives until the test ends.
	NewLocation func(t testing.TB) string
	// Open opens the store at loc, failing t on error. The suite closes it.
	Open func(t testing.TB, loc string) truth.Store

	// Settle is optional. Crash calls it once the child process is dead and
	// before it reads the store through Open: it returns only when no write
	// the child started can still land. A server-side store needs it, since
	// the server may commit the batch in flight after the client died
	// (PostgreSQL: end the child's sessions and wait until they are gone).
	// Nil means the child's death ends its writes (the embedded store writes
	// in the child's own process).
	Settle func(t testing.TB, loc string)

	// View is optional. It opens a read of the store at loc in which every
	// read sees the same instant (PostgreSQL: one REPEATABLE READ
	// transaction), so that a write landing meanwhile cannot tear what the
	// reader sees; the Reader must also implement AuditReader. end releases
	// it. Crash checks the store through View before Settle, then through
	// the store itself after Settle. truth.Store offers no such read, so
	// without View the crash check relies on Settle alone.
	View func(t testing.TB, loc string) (r Reader, end func())

	// TimerLease is the lease the stores Open returns put on the timers
	// DueTimers hands out; zero for a store that does not lease (one process
	// owns it). With a lease, the suite also checks lease behaviour.
	TimerLease time.Duration

	// TamperAudit rewrites the reason of tenant's audit record at seq behind
	// the store's back, leaving its hashes (PostgreSQL: an UPDATE; embedded:
	// a test hook), so the suite can check the chain catches it. s is the
	// open store at loc.
	TamperAudit func(t testing.TB, s truth.Store, loc, tenant string, seq int64, reason string)
}

// Reader is the read side of a store, which Crash verifies through: a
// truth.Store, or a Harness.View.
type Reader interface {
	Load(ctx context.Context, key truth.Key) (truth.Snapshot, error)
	Idempotency(ctx context.Context, tenant, key string) (truth.Idempotency, error)
	PendingOutbox(ctx context.Context, limit int) ([]truth.OutboxRecord, error)
}

// AuditReader reads an aggregate's audit trail in commit order. Both adapters
// provide it and the suite requires it, to check that audit records are
// written atomically with the rest of a commit.
type AuditReader interface {
	AuditTrail(ctx context.Context, key truth.Key) ([]truth.Audit, error)
}

// base is the suite's clock: microsecond precision, which every adapter keeps.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// open opens a fresh store closed at the end of the test.
func open(t *testing.T, h Harness) (truth.Store, string) {
	t.Helper()
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	t.Cleanup(func() { _ = s.Close() })
	return s, loc
}

// NewCommit returns a commit that moves key from exp to exp+1 with two events,
// one audit record and, when idemKey is not empty, an idempotency record.
// Every part is derived from key and revision, so a test can recompute it.
func NewCommit(key truth.Key, exp int64, idemKey string) truth.Commit {
	rev := exp + 1
	at := base.Add(time.Duration(rev) * time.Millisecond)
	c := truth.Commit{
		ExpectedRevision: exp,
		Snapshot:         truth.Snapshot{Key: key, Revision: rev, State: StateFor(key, rev), UpdatedAt: at},
		Audit: []truth.Audit{{
			Tenant: key.Tenant, Aggregate: key, Revision: rev, Actor: "user:alice", Action: "Touch",
			Reason: "test", CorrelationID: "corr-" + key.ID, At: at, Detail: []byte(`{"n":1}`),
		}},
	}
	for i := range 2 {
		c.Events = append(c.Events, truth.Event{
			// Quoted parts keep ids unique even when a part contains '/'.
			EventID:       fmt.Sprintf("%q/%q/%q/%d/%d", key.Tenant, key.Kind, key.ID, rev, i),
			Type:          fmt.Sprintf("Touched%d", i),
			Version:       1,
			Topic:         "test.aggregate.events.v1",
			Tenant:        key.Tenant,
			AggregateKind: key.Kind,
			AggregateID:   key.ID,
			Revision:      rev,
			OccurredAt:    at,
			Producer:      "truthtest",
			CorrelationID: "corr-" + key.ID,
			CausationID:   fmt.Sprintf("cmd-%d", rev),
			Payload:       []byte(fmt.Sprintf(`{"rev":%d,"i":%d}`, rev, i)),
		})
	}
	if idemKey != "" {
		c.Idempotency = &truth.Idempotency{
			Tenant: key.Tenant, Key: idemKey, Aggregate: key, Command: "Touch",
			RequestHash: []byte("hash:" + idemKey), Revision: rev,
			Response: []byte(fmt.Sprintf(`{"revision":%d}`, rev)), CreatedAt: at,
		}
	}
	return c
}

// StateFor is the snapshot state NewCommit writes at revision rev.
func StateFor(key truth.Key, rev int64) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"rev":%d}`, key.ID, rev))
}

func commitAll(t *testing.T, s truth.Store, batch ...truth.Commit) []error {
	t.Helper()
	res, err := s.Commit(context.Background(), batch)
	if err != nil {
		t.Fatalf("Commit: batch error %v", err)
	}
	if len(res) != len(batch) {
		t.Fatalf("Commit returned %d results for %d commits", len(res), len(batch))
	}
	return res
}

func mustCommit(t *testing.T, s truth.Store, batch ...truth.Commit) {
	t.Helper()
	for i, err := range commitAll(t, s, batch...) {
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
}

// wantResults checks per-commit results: nil, or errors.Is the given sentinel.
// errInvalid stands for "any error that is neither conflict".
func wantResults(t *testing.T, got []error, want ...error) {
	t.Helper()
	for i := range want {
		switch {
		case want[i] == nil && got[i] != nil:
			t.Errorf("commit %d: got %v, want success", i, got[i])
		case want[i] == errInvalid && got[i] == nil:
			t.Errorf("commit %d: succeeded, want it rejected as invalid", i)
		case want[i] != nil && want[i] != errInvalid && !errors.Is(got[i], want[i]):
			t.Errorf("commit %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

var errInvalid = errors.New("invalid commit")

func load(t testing.TB, s Reader, key truth.Key) truth.Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load %v: %v", key, err)
	}
	return snap
}

// wantSnapshot checks that key is at rev with NewCommit's state.
func wantSnapshot(t testing.TB, s Reader, key truth.Key, rev int64) {
	t.Helper()
	snap := load(t, s, key)
	if snap.Key != key || snap.Revision != rev || !bytes.Equal(snap.State, StateFor(key, rev)) ||
		!snap.UpdatedAt.Equal(base.Add(time.Duration(rev)*time.Millisecond)) {
		t.Fatalf("Load %v = {key %v rev %d state %s at %v}, want rev %d state %s",
			key, snap.Key, snap.Revision, snap.State, snap.UpdatedAt, rev, StateFor(key, rev))
	}
}

func wantMissing(t *testing.T, s truth.Store, key truth.Key) {
	t.Helper()
	if _, err := s.Load(context.Background(), key); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("Load %v: got %v, want ErrNotFound", key, err)
	}
}

func pending(t testing.TB, s Reader) []truth.OutboxRecord {
	t.Helper()
	recs, err := s.PendingOutbox(context.Background(), 1_000_000)
	if err != nil {
		t.Fatalf("PendingOutbox: %v", err)
	}
	return recs
}

func auditTrail(t testing.TB, s Reader, key truth.Key) []truth.Audit {
	t.Helper()
	ar, ok := s.(AuditReader)
	if !ok {
		t.Fatalf("%T does not implement truthtest.AuditReader", s)
	}
	trail, err := ar.AuditTrail(context.Background(), key)
	if err != nil {
		t.Fatalf("AuditTrail %v: %v", key, err)
	}
	return trail
}

func sameEvent(a, b truth.Event) bool {
	return a.EventID == b.EventID && a.Type == b.Type && a.Version == b.Version && a.Topic == b.Topic &&
		a.Tenant == b.Tenant && a.AggregateKind == b.AggregateKind && a.AggregateID == b.AggregateID &&
		a.Revision == b.Revision && a.OccurredAt.Equal(b.OccurredAt) && a.Producer == b.Producer &&
		a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID && bytes.Equal(a.Payload, b.Payload)
}

func sameAudit(a, b truth.Audit) bool {
	return a.Tenant == b.Tenant && a.Aggregate == b.Aggregate && a.Revision == b.Revision && a.Actor == b.Actor &&
		a.Action == b.Action && a.Reason == b.Reason && a.CorrelationID == b.CorrelationID && a.At.Equal(b.At) &&
		bytes.Equal(a.Detail, b.Detail)
}

func sameIdem(a, b truth.Idempotency) bool {
	return a.Tenant == b.Tenant && a.Key == b.Key && a.Aggregate == b.Aggregate && a.Command == b.Command &&
		bytes.Equal(a.RequestHash, b.RequestHash) && a.Revision == b.Revision && bytes.Equal(a.Response, b.Response) &&
		a.CreatedAt.Equal(b.CreatedAt)
}

// eventsOf filters records to one aggregate.
func eventsOf(recs []truth.OutboxRecord, key truth.Key) []truth.OutboxRecord {
	var out []truth.OutboxRecord
	for _, r := range recs {
		if r.Event.Tenant == key.Tenant && r.Event.AggregateKind == key.Kind && r.Event.AggregateID == key.ID {
			out = append(out, r)
		}
	}
	return out
}

// wantOutboxConsistent checks that key's pending events are exactly those of
// revisions 1..rev as NewCommit makes them, in seq order, and that seqs rise.
func wantOutboxConsistent(t testing.TB, recs []truth.OutboxRecord, key truth.Key, rev int64) {
	t.Helper()
	evs := eventsOf(recs, key)
	if int64(len(evs)) != 2*rev {
		t.Fatalf("%v at revision %d has %d outbox events, want %d", key, rev, len(evs), 2*rev)
	}
	for i, r := range evs {
		want := NewCommit(key, int64(i/2), "").Events[i%2]
		if !sameEvent(r.Event, want) {
			t.Fatalf("%v outbox event %d = %+v, want %+v", key, i, r.Event, want)
		}
		if i > 0 && r.Seq <= evs[i-1].Seq {
			t.Fatalf("%v outbox seqs not rising: %d after %d", key, r.Seq, evs[i-1].Seq)
		}
	}
}
