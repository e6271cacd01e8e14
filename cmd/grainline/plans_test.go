package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/connectors/truth/truthtest"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
)

// commitOrders stores order snapshots: per tenant, plan version and status.
func commitOrders(t *testing.T, s truth.Store) {
	t.Helper()
	orders := []struct {
		tenant, id, status string
		version            int
	}{
		{"acme", "o-1", "inProgress", 1},
		{"acme", "o-2", "completed", 1},
		{"acme", "o-3", "held", 2},
		{"acme", "o-4", "pendingCancellation", 2},
		{"acme", "o-5", "cancelled", 2},
		{"other", "o-1", "inProgress", 2},
		{"other", "o-9", "failed", 7},
	}
	for _, o := range orders {
		c := truthtest.NewCommit(truth.Key{Tenant: o.tenant, Kind: "order", ID: o.id}, 0, "")
		c.Snapshot.State = []byte(fmt.Sprintf(`{"id":%q,"status":%q,"planVersion":%d}`, o.id, o.status, o.version))
		if res, err := s.Commit(context.Background(), []truth.Commit{c}); err != nil || res[0] != nil {
			t.Fatalf("commit %+v: %v %v", o, res, err)
		}
	}
	// A quote is no order.
	if res, err := s.Commit(context.Background(), []truth.Commit{truthtest.NewCommit(truth.Key{Tenant: "acme", Kind: "quote", ID: "q-1"}, 0, "")}); err != nil || res[0] != nil {
		t.Fatalf("commit quote: %v %v", res, err)
	}
}

// planRows returns the output's rows as "version default running total".
func planRows(out string) []string {
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 1 && f[1] != "yes" {
			f = append([]string{f[0], "-"}, f[1:]...)
		}
		rows = append(rows, strings.Join(f[:4], " "))
	}
	return rows
}

func checkPlans(t *testing.T, args []string, want ...string) {
	t.Helper()
	code, out, errOut := runCode(append([]string{"admin", "plans"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if got := planRows(out); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rows %q, want %q\n%s", got, want, out)
	}
}

func TestAdminPlansEmbedded(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.Open(embedded.Config{Dir: filepath.Join(dir, "truth")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	commitOrders(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkPlans(t, []string{"-data-dir", dir}, "1 - 1 2", "2 yes 3 4", "7 - 0 1")
	checkPlans(t, []string{"-data-dir", dir, "-tenant", "acme"}, "1 - 1 2", "2 yes 2 3")
	if code, _, _ := runCode("admin", "plans"); code == 0 {
		t.Fatal("admin plans without a store succeeded")
	}
}

func TestAdminPlansPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDB(t)
	p, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := migrations.Up(ctx, p); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, postgres.Config{DSN: dsn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commitOrders(t, s)
	checkPlans(t, []string{"-postgres", dsn}, "1 - 1 2", "2 yes 3 4", "7 - 0 1")
	checkPlans(t, []string{"-postgres", dsn, "-tenant", "other"}, "1 - 0 0", "2 yes 1 1", "7 - 0 1")
}
