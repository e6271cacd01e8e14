package main

import (
	"context"
	"encoding/hex"
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

// commitN commits n revisions of one quote of tenant and another tenant's
// quote alongside, and returns tenant's head.
func commitN(t *testing.T, s truth.Store, tenant string, n int) truth.ChainHead {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		res, err := s.Commit(ctx, []truth.Commit{
			truthtest.NewCommit(truth.Key{Tenant: tenant, Kind: "quote", ID: "q1"}, int64(i), ""),
			truthtest.NewCommit(truth.Key{Tenant: "other", Kind: "quote", ID: "q1"}, int64(i), ""),
		})
		if err != nil || res[0] != nil || res[1] != nil {
			t.Fatalf("commit %d: %v %v", i, res, err)
		}
	}
	head, err := s.(truth.ChainReader).AuditHead(ctx, tenant)
	if err != nil || head.Seq != int64(n) {
		t.Fatalf("head %+v, %v", head, err)
	}
	return head
}

func TestAdminAuditVerifyEmbedded(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.Open(embedded.Config{Dir: filepath.Join(dir, "truth")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	head := commitN(t, s, "acme", 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCode("admin", "audit-verify", "-data-dir", dir, "-tenant", "acme")
	want := "tenant acme: 3 records verified, head seq 3 hash " + hex.EncodeToString(head.Hash)
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, %q %q; want %q", code, out, errOut, want)
	}
	if code, out, _ := runCode("admin", "audit-verify", "-data-dir", dir, "-tenant", "nobody"); code != 0 || !strings.Contains(out, "0 records verified, head seq 0") {
		t.Fatalf("unknown tenant: exit %d, %q", code, out)
	}
}

func TestAdminAuditVerifyPostgresDetectsTampering(t *testing.T) {
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
	head := commitN(t, s, "acme", 4)

	code, out, errOut := runCode("admin", "audit-verify", "-postgres", dsn, "-tenant", "acme", "-page", "3")
	if code != 0 || !strings.Contains(out, "4 records verified, head seq 4 hash "+hex.EncodeToString(head.Hash)) {
		t.Fatalf("intact chain: exit %d, %q %q", code, out, errOut)
	}
	if _, err := p.Exec(ctx, `UPDATE audit SET reason = 'rewritten' WHERE tenant = 'acme' AND chain_seq = 2`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCode("admin", "audit-verify", "-postgres", dsn, "-tenant", "acme", "-page", "3")
	if code != 1 || !strings.Contains(out, "1 records verified, first broken seq 2") || !strings.Contains(errOut, "broken at seq 2") {
		t.Fatalf("tampered chain: exit %d, %q %q; want exit 1 naming seq 2", code, out, errOut)
	}
	// The other tenant's chain is unaffected.
	if code, out, errOut := runCode("admin", "audit-verify", "-postgres", dsn, "-tenant", "other"); code != 0 || !strings.Contains(out, "4 records verified") {
		t.Fatalf("other tenant: exit %d, %q %q", code, out, errOut)
	}
	// A deleted newest record is caught through the head.
	if _, err := p.Exec(ctx, `DELETE FROM audit WHERE tenant = 'other' AND chain_seq = 4`); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCode("admin", "audit-verify", "-postgres", dsn, "-tenant", "other"); code != 1 || !strings.Contains(errOut, "broken at seq 4") {
		t.Fatalf("truncated chain: exit %d, %q", code, errOut)
	}
}

func TestAdminUsage(t *testing.T) {
	for _, args := range [][]string{
		{"admin"},
		{"admin", "nonsense"},
		{"admin", "audit-verify", "-tenant", "acme"},
		{"admin", "audit-verify", "-data-dir", "x"},
		{"admin", "audit-verify", "-data-dir", "x", "-postgres", "y", "-tenant", "acme"},
	} {
		if code, _, errOut := runCode(args...); code != 2 || !strings.Contains(errOut, "audit-verify") {
			t.Fatalf("%v: exit %d, %q; want usage", args, code, errOut)
		}
	}
}
