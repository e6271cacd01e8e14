package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/truthtest"
)

// settle ends every other client session on the test database and waits
// until none is left. A session the killed crash child left behind may still
// be running the batch in flight; once its backend is gone, that transaction
// has committed or rolled back, and nothing more of the child can land.
// Autovacuum workers are left alone: they come and go by themselves and
// write no truth.
func settle(t testing.TB, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("settle: connect: %v", err)
	}
	defer conn.Close(context.Background())
	const others = `FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) `+others); err != nil {
			t.Fatalf("settle: terminate sessions: %v", err)
		}
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) `+others).Scan(&left); err != nil {
			t.Fatalf("settle: count sessions: %v", err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("settle: %d sessions still on the database after 10s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// view opens one read-only REPEATABLE READ transaction: every read through
// it sees the database as of its first query, whatever commits meanwhile.
// Its queries mirror the store's own reads.
func view(t testing.TB, dsn string) (truthtest.Reader, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("view: connect: %v", err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(context.Background())
		t.Fatalf("view: begin: %v", err)
	}
	end := func() {
		_ = tx.Rollback(context.Background())
		_ = conn.Close(context.Background())
	}
	return txReader{tx}, end
}

// txReader reads the truth tables inside one transaction.
type txReader struct{ tx pgx.Tx }

var (
	_ truthtest.Reader      = txReader{}
	_ truthtest.AuditReader = txReader{}
)

func (r txReader) Load(ctx context.Context, key truth.Key) (truth.Snapshot, error) {
	snap := truth.Snapshot{Key: key}
	err := r.tx.QueryRow(ctx,
		`SELECT revision, state, updated_at FROM snapshots WHERE tenant = $1 AND kind = $2 AND id = $3`,
		key.Tenant, key.Kind, key.ID).Scan(&snap.Revision, &snap.State, &snap.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return truth.Snapshot{}, fmt.Errorf("%w: snapshot %v", truth.ErrNotFound, key)
	}
	if err != nil {
		return truth.Snapshot{}, fmt.Errorf("view: load %v: %w", key, err)
	}
	return snap, nil
}

func (r txReader) Idempotency(ctx context.Context, tenant, key string) (truth.Idempotency, error) {
	rec := truth.Idempotency{Tenant: tenant, Key: key, Aggregate: truth.Key{Tenant: tenant}}
	err := r.tx.QueryRow(ctx,
		`SELECT kind, id, command, request_hash, revision, response, created_at
		   FROM idempotency WHERE tenant = $1 AND key = $2`, tenant, key).
		Scan(&rec.Aggregate.Kind, &rec.Aggregate.ID, &rec.Command, &rec.RequestHash, &rec.Revision, &rec.Response, &rec.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return truth.Idempotency{}, fmt.Errorf("%w: idempotency key %q in tenant %s", truth.ErrNotFound, key, tenant)
	}
	if err != nil {
		return truth.Idempotency{}, fmt.Errorf("view: idempotency: %w", err)
	}
	return rec, nil
}

func (r txReader) PendingOutbox(ctx context.Context, limit int) ([]truth.OutboxRecord, error) {
	rows, err := r.tx.Query(ctx, `
		SELECT seq, event_id, topic, tenant, aggregate_kind, aggregate_id, revision, type, version,
		       occurred_at, producer, correlation_id, causation_id, payload
		  FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("view: pending outbox: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (truth.OutboxRecord, error) {
		var rec truth.OutboxRecord
		e := &rec.Event
		err := row.Scan(&rec.Seq, &e.EventID, &e.Topic, &e.Tenant, &e.AggregateKind, &e.AggregateID, &e.Revision,
			&e.Type, &e.Version, &e.OccurredAt, &e.Producer, &e.CorrelationID, &e.CausationID, &e.Payload)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("view: pending outbox: %w", err)
	}
	return recs, nil
}

func (r txReader) AuditTrail(ctx context.Context, key truth.Key) ([]truth.Audit, error) {
	rows, err := r.tx.Query(ctx, `
		SELECT revision, actor, action, reason, correlation_id, at, detail
		  FROM audit WHERE tenant = $1 AND kind = $2 AND id = $3 ORDER BY seq`, key.Tenant, key.Kind, key.ID)
	if err != nil {
		return nil, fmt.Errorf("view: audit trail: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (truth.Audit, error) {
		a := truth.Audit{Tenant: key.Tenant, Aggregate: key}
		err := row.Scan(&a.Revision, &a.Actor, &a.Action, &a.Reason, &a.CorrelationID, &a.At, &a.Detail)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("view: audit trail: %w", err)
	}
	return out, nil
}

// TestSettleEndsSessions: after settle, no other session is left on the
// database, and a store opened before it notices its connections were ended
// rather than hanging or reading stale data.
func TestSettleEndsSessions(t *testing.T) {
	ctx := context.Background()
	dsn := harness.NewLocation(t)
	s := open(t, dsn)
	defer s.Close()
	// Hold two sessions open: one idle in the pool, one in a transaction.
	c, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	if err := s.Pool().Ping(ctx); err != nil {
		t.Fatal(err)
	}
	settle(t, dsn)
	var left int
	check, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	if err := check.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d sessions left after settle", left)
	}
	if _, err := tx.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("a transaction on an ended session still answers")
	}
	c.Release()
}

// TestViewIsConsistent: a commit that lands after the view's first read is
// invisible to all of the view's later reads, snapshots and outbox alike.
func TestViewIsConsistent(t *testing.T) {
	ctx := context.Background()
	dsn := harness.NewLocation(t)
	s := open(t, dsn)
	defer s.Close()
	k := truth.Key{Tenant: "acme", Kind: "quote", ID: "q1"}
	if res, err := s.Commit(ctx, []truth.Commit{truthtest.NewCommit(k, 0, "q1@1")}); err != nil || res[0] != nil {
		t.Fatal(res, err)
	}
	r, end := view(t, dsn)
	defer end()
	if recs, err := r.PendingOutbox(ctx, 100); err != nil || len(recs) != 2 {
		t.Fatalf("view outbox before the second commit: %d records, %v", len(recs), err)
	}
	if res, err := s.Commit(ctx, []truth.Commit{truthtest.NewCommit(k, 1, "q1@2")}); err != nil || res[0] != nil {
		t.Fatal(res, err)
	}
	if snap, err := s.Load(ctx, k); err != nil || snap.Revision != 2 {
		t.Fatalf("store sees revision %d, %v; want 2", snap.Revision, err)
	}
	if snap, err := r.Load(ctx, k); err != nil || snap.Revision != 1 {
		t.Fatalf("view sees revision %d, %v; want 1 (its snapshot predates the commit)", snap.Revision, err)
	}
	if _, err := r.Idempotency(ctx, "acme", "q1@2"); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("view sees the later idempotency record: %v", err)
	}
	if trail, err := r.(truthtest.AuditReader).AuditTrail(ctx, k); err != nil || len(trail) != 1 {
		t.Fatalf("view audit trail: %d records, %v; want 1", len(trail), err)
	}
}
