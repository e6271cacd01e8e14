// Package truth is the port of the truth store: the one place where a grain's
// snapshot, its outbox events, its idempotency record and its audit record are
// made durable together, in one atomic commit. Adapters live in sub-packages
// (postgres, embedded); truthtest holds the conformance suite both pass.
package truth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound: no snapshot or record under that key.
	ErrNotFound = errors.New("truth: not found")
	// ErrRevisionConflict: the snapshot is not at the expected revision
	// (another activation committed first). Fails only its own commit.
	ErrRevisionConflict = errors.New("truth: revision conflict")
	// ErrIdempotencyConflict: the idempotency key was already recorded for
	// this tenant. Fails only its own commit.
	ErrIdempotencyConflict = errors.New("truth: idempotency key already recorded")
	// ErrInvalidCommit: a commit breaks the rules of Commit (see Validate).
	// Fails only its own commit.
	ErrInvalidCommit = errors.New("truth: invalid commit")
)

// Key addresses one aggregate.
type Key struct {
	Tenant string
	Kind   string
	ID     string
}

// Snapshot is the durable state of one aggregate.
type Snapshot struct {
	Key       Key
	Revision  int64 // 1 after the first commit
	State     []byte
	UpdatedAt time.Time
}

// Event is one outbox event with its envelope. The relay publishes it to Topic
// keyed by AggregateID.
type Event struct {
	EventID       string // unique, e.g. "<tenant>/<kind>/<id>/<revision>/<index>"
	Type          string // e.g. "QuoteAccepted"
	Version       int    // schema version of Payload
	Topic         string
	Tenant        string
	AggregateKind string
	AggregateID   string
	Revision      int64 // aggregate revision that produced it
	OccurredAt    time.Time
	Producer      string
	CorrelationID string
	CausationID   string
	Payload       []byte // JSON
}

// OutboxRecord is an event waiting to be published. Seq orders records; for
// one aggregate it follows the aggregate's commits.
type OutboxRecord struct {
	Seq   int64
	Event Event
}

// Idempotency is the record of a command applied under an idempotency key.
type Idempotency struct {
	Tenant      string
	Key         string // the client's idempotency key
	Aggregate   Key
	Command     string
	RequestHash []byte // hash of the request, to detect a reused key
	Revision    int64
	Response    []byte // the first result, replayed on repeats
	CreatedAt   time.Time
}

// Audit is one audit record: who did what to which aggregate, and why.
type Audit struct {
	Tenant        string
	Aggregate     Key
	Revision      int64
	Actor         string
	Action        string // the command name
	Reason        string
	CorrelationID string
	At            time.Time
	Detail        []byte // JSON, optional

	// The chain (see chain.go). The store sets these inside the commit;
	// values given in a Commit are ignored. Seq counts the tenant's audit
	// records from 1 without gaps; PrevHash is the Hash of the record at
	// Seq-1 (empty for Seq 1); Hash is AuditHash of the record.
	Seq      int64
	PrevHash []byte
	Hash     []byte
}

// Commit is everything one command makes durable. Snapshot.Revision must be
// ExpectedRevision+1; ExpectedRevision 0 means the aggregate must not exist.
type Commit struct {
	ExpectedRevision int64
	Snapshot         Snapshot
	Events           []Event
	Idempotency      *Idempotency // optional
	Audit            []Audit
	// Timers are set and cancelled with the rest of the commit, on the
	// commit's aggregate (Snapshot.Key): a failed commit changes no timer.
	// Changes apply in order; see ValidateTimers for the rules.
	Timers []TimerChange
}

// Store is the truth store. All methods are safe for concurrent use.
type Store interface {
	// Load returns the snapshot under key, or ErrNotFound.
	Load(ctx context.Context, key Key) (Snapshot, error)

	// Commit writes a batch of commits durably (one transaction, one sync)
	// and returns one result per commit, in order: nil, ErrRevisionConflict or
	// ErrIdempotencyConflict. A failed commit writes nothing of its own and
	// does not fail the others. The returned error is for the batch as a
	// whole (e.g. the database is unreachable), and then the outcome of the
	// batch may be unknown: a connection lost while the transaction commits
	// leaves the caller unable to tell whether the batch was written whole
	// or not at all (never in part). Callers must reload the snapshots (and
	// idempotency records) before deciding again, not assume either outcome.
	Commit(ctx context.Context, batch []Commit) ([]error, error)

	// Idempotency returns the record for tenant and key, or ErrNotFound.
	Idempotency(ctx context.Context, tenant, key string) (Idempotency, error)

	// PendingOutbox returns up to limit unacknowledged outbox records in Seq
	// order.
	PendingOutbox(ctx context.Context, limit int) ([]OutboxRecord, error)

	// AckOutbox marks records as published; they are not returned again.
	AckOutbox(ctx context.Context, seqs []int64) error

	// Close releases the store.
	Close() error
}

// Validate checks the rules every store enforces on a commit: a complete
// snapshot key, ExpectedRevision >= 0, Snapshot.Revision ==
// ExpectedRevision+1, and an idempotency record with tenant and key. The
// error wraps ErrInvalidCommit.
func (c *Commit) Validate() error {
	k := c.Snapshot.Key
	switch {
	case k.Tenant == "" || k.Kind == "" || k.ID == "":
		return fmt.Errorf("%w: snapshot key %q/%q/%q has an empty part", ErrInvalidCommit, k.Tenant, k.Kind, k.ID)
	case c.ExpectedRevision < 0:
		return fmt.Errorf("%w: expected revision %d is negative", ErrInvalidCommit, c.ExpectedRevision)
	case c.Snapshot.Revision != c.ExpectedRevision+1:
		return fmt.Errorf("%w: snapshot revision %d is not expected revision %d + 1", ErrInvalidCommit, c.Snapshot.Revision, c.ExpectedRevision)
	case c.Idempotency != nil && (c.Idempotency.Tenant == "" || c.Idempotency.Key == ""):
		return fmt.Errorf("%w: idempotency record without tenant or key", ErrInvalidCommit)
	}
	return nil
}

// TimerChange sets or cancels one durable timer of the commit's aggregate.
// A timer is named by (tenant, kind, id, TimerID); setting an existing one
// replaces it (new At, Command and Payload, and any lease is dropped).
type TimerChange struct {
	TimerID string
	// Cancel removes the timer instead of setting it. Cancelling a timer that
	// does not exist is not an error.
	Cancel bool
	// IfAt, for a cancel, removes the timer only while it is still due at
	// exactly IfAt: the runtime cancels a timer that fired this way, so a
	// timer replaced meanwhile survives. Zero cancels unconditionally.
	IfAt time.Time
	// At is when the timer is due. Stores keep microsecond precision:
	// callers truncate (TimerTime) so the value read back is the value set.
	At      time.Time
	Command string // wire name of the command sent to the aggregate when due
	Payload []byte // JSON body of that command; may be empty
}

// DueTimer is a timer whose time has come.
type DueTimer struct {
	Key     Key
	TimerID string
	At      time.Time
	Command string
	Payload []byte
}

// TimerTime truncates t to the precision every store keeps (microseconds,
// PostgreSQL's), in UTC.
func TimerTime(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// TimerStore is the timer side of the truth store, implemented by both
// adapters. All methods are safe for concurrent use.
type TimerStore interface {
	// DueTimers returns up to limit timers due at or before now, earliest
	// first (ties in an order of the store's choosing). A store shared by several processes leases
	// the timers it returns for a while (see the adapter), so that pollers
	// elsewhere do not take them meanwhile; a lease ends when it expires or
	// the timer is cancelled or replaced.
	DueTimers(ctx context.Context, now time.Time, limit int) ([]DueTimer, error)
	// CancelTimer removes one timer outside a commit, only while it is due at
	// exactly at (zero: whatever its time). Removing a missing timer is not
	// an error.
	CancelTimer(ctx context.Context, key Key, timerID string, at time.Time) error
}

// ValidateTimers checks the timer changes of a commit: each names a timer
// (non-empty TimerID of at most 200 bytes), a set has a non-zero At and a
// Command, and no TimerID appears twice in one commit (merge them: the last
// change wins). The error wraps ErrInvalidCommit.
func (c *Commit) ValidateTimers() error {
	seen := make(map[string]bool, len(c.Timers))
	for _, t := range c.Timers {
		switch {
		case t.TimerID == "" || len(t.TimerID) > 200:
			return fmt.Errorf("%w: timer id %q is empty or longer than 200 bytes", ErrInvalidCommit, t.TimerID)
		case seen[t.TimerID]:
			return fmt.Errorf("%w: timer %q changed twice in one commit", ErrInvalidCommit, t.TimerID)
		case !t.Cancel && (t.At.IsZero() || t.Command == ""):
			return fmt.Errorf("%w: timer %q is set without a time or a command", ErrInvalidCommit, t.TimerID)
		}
		seen[t.TimerID] = true
	}
	return nil
}
