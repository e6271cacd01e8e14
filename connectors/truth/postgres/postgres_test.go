package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/connectors/truth/truthtest"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
)

func migrate(t testing.TB, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

// testTimerLease is the timer lease of the stores the conformance suite opens.
const testTimerLease = 400 * time.Millisecond

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, TimerLease: testTimerLease}, nil)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	return s
}

var harness = truthtest.Harness{
	NewLocation: func(t testing.TB) string {
		dsn := testenv.PostgresDB(t)
		migrate(t, dsn)
		return dsn
	},
	Open:       func(t testing.TB, dsn string) truth.Store { return open(t, dsn) },
	Settle:     settle,
	View:       view,
	TimerLease: testTimerLease,
	TamperAudit: func(t testing.TB, _ truth.Store, dsn, tenant string, seq int64, reason string) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tag, err := conn.Exec(ctx, `UPDATE audit SET reason = $3 WHERE tenant = $1 AND chain_seq = $2`, tenant, seq, reason)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("tamper with audit %q seq %d: %v (%d rows)", tenant, seq, err, tag.RowsAffected())
		}
	},
}

func TestConformance(t *testing.T) { truthtest.Run(t, harness) }

func TestCrash(t *testing.T) { truthtest.Crash(t, harness, "TestCrashChild") }

func TestCrashChild(t *testing.T) { truthtest.CrashChild(t, harness) }

func TestCheckSchema(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDB(t)
	s := open(t, dsn)
	defer s.Close()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var every []int
	for _, m := range all {
		every = append(every, m.Version)
	}
	err = s.CheckSchema(ctx)
	if !errors.Is(err, postgres.ErrSchemaBehind) || !strings.Contains(err.Error(), fmt.Sprint(every)) {
		t.Fatalf("empty database: CheckSchema = %v, want ErrSchemaBehind naming every version %v", err, every)
	}
	// The store never migrates by itself: still behind.
	if err := s.CheckSchema(ctx); !errors.Is(err, postgres.ErrSchemaBehind) {
		t.Fatalf("second CheckSchema = %v", err)
	}
	if _, err := migrations.Up(ctx, s.Pool()); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSchema(ctx); err != nil {
		t.Fatalf("migrated database: CheckSchema = %v", err)
	}
}

func TestRelayLock(t *testing.T) {
	ctx := context.Background()
	dsn := harness.NewLocation(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()

	release, held, ok, err := a.TryRelayLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first relay: ok=%v err=%v", ok, err)
	}
	if err := held(ctx); err != nil {
		t.Fatalf("held while holding: %v", err)
	}
	if _, _, ok, err := b.TryRelayLock(ctx); err != nil || ok {
		t.Fatalf("second relay got the lock while the first holds it: ok=%v err=%v", ok, err)
	}
	release()
	release() // harmless
	if err := held(ctx); !errors.Is(err, postgres.ErrRelayLockLost) {
		t.Fatalf("held after release = %v, want ErrRelayLockLost", err)
	}
	// The lock is free once the first session is gone; poll, since the
	// server ends the session asynchronously.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rel, _, ok, err := b.TryRelayLock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rel()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock not free after release")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A relay whose lock session is terminated learns it from held, and
// another relay can take the lock.
func TestRelayLockLostWhenSessionEnds(t *testing.T) {
	ctx := context.Background()
	dsn := harness.NewLocation(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	release, held, ok, err := a.TryRelayLock(ctx)
	if err != nil || !ok {
		t.Fatalf("first relay: ok=%v err=%v", ok, err)
	}
	defer release()
	var pid int
	if err := b.Pool().QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid); err != nil {
		t.Fatalf("find lock holder: %v", err)
	}
	var killed bool
	if err := b.Pool().QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate lock session %d: killed=%v err=%v", pid, killed, err)
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := held(hctx); !errors.Is(err, postgres.ErrRelayLockLost) {
		t.Fatalf("held after the session was terminated = %v, want ErrRelayLockLost", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rel, held2, ok, err := b.TryRelayLock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if err := held2(ctx); err != nil {
				t.Fatalf("new holder: held = %v", err)
			}
			rel()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock not free after its session was terminated")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Concurrent relays race for the lock: exactly one wins each round.
func TestRelayLockRace(t *testing.T) {
	ctx := context.Background()
	s := open(t, harness.NewLocation(t))
	defer s.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var releases []func()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, _, ok, err := s.TryRelayLock(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				releases = append(releases, rel)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(releases) != 1 {
		t.Fatalf("%d relays hold the lock, want 1", len(releases))
	}
	releases[0]()
}

func TestPruneOutbox(t *testing.T) {
	ctx := context.Background()
	s := open(t, harness.NewLocation(t))
	defer s.Close()
	k := truth.Key{Tenant: "acme", Kind: "quote", ID: "q1"}
	if res, err := s.Commit(ctx, []truth.Commit{truthtest.NewCommit(k, 0, "")}); err != nil || res[0] != nil {
		t.Fatal(res, err)
	}
	recs, err := s.PendingOutbox(ctx, 10)
	if err != nil || len(recs) != 2 {
		t.Fatal(recs, err)
	}
	if err := s.AckOutbox(ctx, []int64{recs[0].Seq}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneOutbox(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1 (only the published record)", n, err)
	}
	if left, _ := s.PendingOutbox(ctx, 10); len(left) != 1 || left[0].Seq != recs[1].Seq {
		t.Fatalf("pending after prune: %+v", left)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []postgres.Config{
		{},
		{DSN: "postgres://x", MaxConns: -1},
		{DSN: "postgres://x", MinConns: 20},
		{DSN: "postgres://x", CommitAttempts: -1},
	} {
		if _, err := postgres.Open(context.Background(), cfg, nil); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// A database that cannot be reached is a batch error, not per-commit results.
func TestCommitOnClosedPool(t *testing.T) {
	s := open(t, harness.NewLocation(t))
	s.Close()
	k := truth.Key{Tenant: "acme", Kind: "quote", ID: "q1"}
	res, err := s.Commit(context.Background(), []truth.Commit{truthtest.NewCommit(k, 0, "")})
	if err == nil || res != nil {
		t.Fatalf("Commit on a closed pool = %v, %v; want a batch error", res, err)
	}
}

func BenchmarkCommitBatch(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := harness.Open(b, harness.NewLocation(b))
			defer s.Close()
			truthtest.BenchCommit(b, s, size)
		})
	}
}

// The artifacts table repeats the digest and size rules, so a writer that
// bypasses Store.PutArtifact cannot store bytes under a wrong digest.
func TestArtifactTableChecks(t *testing.T) {
	ctx := context.Background()
	dsn := harness.NewLocation(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	body := []byte("body")
	for name, row := range map[string][]any{
		"wrong digest":   {truth.ArtifactDigest([]byte("other")), body},
		"upper-case hex": {strings.ToUpper(truth.ArtifactDigest(body)), body},
		"over the limit": {truth.ArtifactDigest(make([]byte, truth.MaxArtifactBytes+1)), make([]byte, truth.MaxArtifactBytes+1)},
		"digest not hex": {strings.Repeat("z", 64), body},
	} {
		if _, err := conn.Exec(ctx, `INSERT INTO artifacts VALUES ('acme', $1, 'application/pdf', $2, now(), 'user:x')`, row...); err == nil {
			t.Errorf("%s: insert accepted", name)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO artifacts VALUES ('acme', $1, 'application/pdf', $2, now(), 'user:x')`,
		truth.ArtifactDigest(body), body); err != nil {
		t.Fatalf("valid row: %v", err)
	}
}
