package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
)

const adminUsage = "usage: grainline admin audit-verify (-postgres DSN | -data-dir DIR) -tenant T\n" +
	"       grainline admin plans (-postgres DSN | -data-dir DIR) [-tenant T]"

// runAdmin runs operator commands against the truth store. audit-verify
// re-computes a tenant's audit hash chain (ADR 0014) from the stored
// records and checks it against the stored head.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "plans" {
		return runAdminPlans(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "audit-verify" {
		return subcommandUsage(stderr, args, adminUsage)
	}
	fs := newFlags("admin audit-verify", stderr)
	dsn := fs.String("postgres", "", "PostgreSQL DSN of the truth store")
	dataDir := fs.String("data-dir", "", "data folder of a stopped dev node: the embedded store in DIR/truth")
	tenant := fs.String("tenant", "", "tenant whose chain to verify (required)")
	pageSize := fs.Int("page", 1000, "records read per query")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *tenant == "" || (*dsn == "") == (*dataDir == "") {
		fmt.Fprintln(stderr, "grainline admin audit-verify: -tenant and exactly one of -postgres or -data-dir are required")
		fmt.Fprintln(stderr, adminUsage)
		return errUsage
	}
	log := slog.New(slog.DiscardHandler)
	var reader truth.ChainReader
	if *dsn != "" {
		s, err := postgres.Open(ctx, postgres.Config{DSN: *dsn, MaxConns: 2}, log)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.CheckSchema(ctx); err != nil {
			return err
		}
		reader = s
	} else {
		s, err := embedded.Open(embedded.Config{Dir: filepath.Join(*dataDir, "truth")}, log)
		if err != nil {
			return err
		}
		defer s.Close()
		reader = s
	}
	checked, head, err := truth.VerifyTenant(ctx, reader, *tenant, *pageSize)
	var ce *truth.ChainError
	if errors.As(err, &ce) {
		fmt.Fprintf(stdout, "tenant %s: %d records verified, first broken seq %d\n", *tenant, checked, ce.Seq)
		return fmt.Errorf("audit chain broken at seq %d: %w", ce.Seq, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tenant %s: %d records verified, head seq %d hash %s\n", *tenant, checked, head.Seq, hex.EncodeToString(head.Hash))
	return nil
}
