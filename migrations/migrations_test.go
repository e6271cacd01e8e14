package migrations_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
)

func TestLatestIsNewestFile(t *testing.T) {
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no migrations embedded")
	}
	if got := all[len(all)-1].Version; got != migrations.Latest {
		t.Fatalf("Latest = %d, newest file is %d", migrations.Latest, got)
	}
	for i, m := range all {
		if m.Version != i+1 {
			t.Fatalf("versions must be contiguous from 1: position %d has %d", i, m.Version)
		}
	}
}

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := pgxpool.New(ctx, testenv.PostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	if v, err := migrations.Version(ctx, p); err != nil || v != 0 {
		t.Fatalf("fresh database: version %d, %v; want 0", v, err)
	}
	applied, err := migrations.Up(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	all := versions(1, migrations.Latest)
	if !slices.Equal(applied, all) {
		t.Fatalf("applied %v, want %v", applied, all)
	}
	if v, err := migrations.Version(ctx, p); err != nil || v != migrations.Latest {
		t.Fatalf("version %d, %v; want %d", v, err, migrations.Latest)
	}
	if _, err := p.Exec(ctx, `INSERT INTO snapshots VALUES ('t','k','i',1,'\x00',now())`); err != nil {
		t.Fatalf("schema not usable after Up: %v", err)
	}
	if _, err := p.Exec(ctx, `INSERT INTO timers (tenant, kind, id, timer_id, due_at, command, payload)
		VALUES ('t','k','i','expire',now(),'expire','\x')`); err != nil {
		t.Fatalf("timers not usable after Up: %v", err)
	}
	again, err := migrations.Up(ctx, p)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Up applied %v, %v; want nothing", again, err)
	}
	reverted, err := migrations.Down(ctx, p, 0)
	down := slices.Clone(all)
	slices.Reverse(down)
	if err != nil || !slices.Equal(reverted, down) {
		t.Fatalf("Down reverted %v, %v; want %v", reverted, err, down)
	}
	var n int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename IN ('snapshots','outbox','idempotency','audit','timers','audit_heads','artifacts','attempts')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables left after Down (%v)", n, err)
	}
	if pending, err := migrations.Pending(ctx, p); err != nil || !slices.Equal(pending, all) {
		t.Fatalf("pending %v, %v; want %v", pending, err, all)
	}
	if applied, err := migrations.Up(ctx, p); err != nil || !slices.Equal(applied, all) {
		t.Fatalf("Up after Down: %v, %v", applied, err)
	}
}

// Concurrent migrators serialise on the advisory lock: exactly one applies
// each version, none fails.
func TestConcurrentUp(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	var wg sync.WaitGroup
	results := make([][]int, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = migrations.Up(ctx, p)
		}()
	}
	wg.Wait()
	total := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += len(results[i])
	}
	if total != migrations.Latest {
		t.Fatalf("versions applied %d times in total, want %d: %v", total, migrations.Latest, results)
	}
}

// Migration 0003 chains the audit rows already there, per tenant in the
// order they were written, with the same hash as truth.AuditHash: the Go
// verifier accepts the chain SQL built, and the heads match.
func TestAuditChainMigration(t *testing.T) {
	ctx := context.Background()
	p := pool(t)
	if _, err := migrations.Up(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Down(ctx, p, 2); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	rows := []struct {
		tenant, id, reason string
		detail             []byte
	}{
		{"acme", "q1", "first", []byte(`{"a":1}`)},
		{"globex", "g1", "", nil},
		{"acme", "q2", "naïve ünïcode", []byte{}},
		{"acme", "q1", "third", nil},
		{"globex", "g1", "second", []byte(`{}`)},
	}
	for i, r := range rows {
		if _, err := p.Exec(ctx, `INSERT INTO audit (tenant, kind, id, revision, actor, action, reason, correlation_id, at, detail)
			VALUES ($1, 'quote', $2, $3, 'user:alice', 'Touch', $4, 'corr', $5, $6)`,
			r.tenant, r.id, int64(i+1), r.reason, at.Add(time.Duration(i)*time.Second), r.detail); err != nil {
			t.Fatal(err)
		}
	}
	if applied, err := migrations.Up(ctx, p); err != nil || !slices.Equal(applied, versions(3, migrations.Latest)) {
		t.Fatalf("Up: %v, %v", applied, err)
	}
	for tenant, n := range map[string]int{"acme": 3, "globex": 2} {
		q, err := p.Query(ctx, `SELECT tenant, kind, id, revision, actor, action, reason, correlation_id, at, detail,
				chain_seq, prev_hash, hash
			FROM audit WHERE tenant = $1 ORDER BY chain_seq`, tenant)
		if err != nil {
			t.Fatal(err)
		}
		var recs []truth.Audit
		for q.Next() {
			var a truth.Audit
			if err := q.Scan(&a.Tenant, &a.Aggregate.Kind, &a.Aggregate.ID, &a.Revision, &a.Actor, &a.Action, &a.Reason,
				&a.CorrelationID, &a.At, &a.Detail, &a.Seq, &a.PrevHash, &a.Hash); err != nil {
				t.Fatal(err)
			}
			a.Aggregate.Tenant = a.Tenant
			recs = append(recs, a)
		}
		if err := q.Err(); err != nil {
			t.Fatal(err)
		}
		if len(recs) != n {
			t.Fatalf("%s: %d rows, want %d", tenant, len(recs), n)
		}
		if last, err := truth.VerifyChain(recs, nil); err != nil || last != int64(n) {
			t.Fatalf("%s: chain built by the migration does not verify: %d, %v", tenant, last, err)
		}
		var seq int64
		var hash []byte
		if err := p.QueryRow(ctx, `SELECT chain_seq, hash FROM audit_heads WHERE tenant = $1`, tenant).Scan(&seq, &hash); err != nil {
			t.Fatal(err)
		}
		if seq != int64(n) || !bytes.Equal(hash, recs[n-1].Hash) {
			t.Fatalf("%s: head %d %x, want %d %x", tenant, seq, hash, n, recs[n-1].Hash)
		}
	}
	// Order within a tenant follows the original seq.
	q, err := p.Query(ctx, `SELECT reason FROM audit WHERE tenant = 'acme' ORDER BY chain_seq`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(q, pgx.RowTo[string])
	if err != nil || !slices.Equal(got, []string{"first", "naïve ünïcode", "third"}) {
		t.Fatalf("acme in chain order: %v, %v", got, err)
	}
}

// versions returns from..to inclusive.
func versions(from, to int) []int {
	var out []int
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}
