package migrations_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
	if !slices.Equal(applied, []int{1, 2}) {
		t.Fatalf("applied %v, want [1 2]", applied)
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
	if err != nil || !slices.Equal(reverted, []int{2, 1}) {
		t.Fatalf("Down reverted %v, %v; want [2 1]", reverted, err)
	}
	var n int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename IN ('snapshots','outbox','idempotency','audit','timers')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables left after Down (%v)", n, err)
	}
	if pending, err := migrations.Pending(ctx, p); err != nil || !slices.Equal(pending, []int{1, 2}) {
		t.Fatalf("pending %v, %v; want [1 2]", pending, err)
	}
	if applied, err := migrations.Up(ctx, p); err != nil || !slices.Equal(applied, []int{1, 2}) {
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
