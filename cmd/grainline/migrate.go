package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/migrations"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		return subcommandUsage(stderr, args, "usage: grainline migrate up|status [-postgres DSN]")
	}
	action := args[0]
	fs := newFlags("migrate "+action, stderr)
	dsn := fs.String("postgres", envOr("GRAINLINE_POSTGRES", ""), "PostgreSQL DSN (env GRAINLINE_POSTGRES)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *dsn == "" {
		fmt.Fprintln(stderr, "grainline migrate: -postgres or GRAINLINE_POSTGRES is required")
		return errUsage
	}
	pool, err := pgxpool.New(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if action == "up" {
		applied, err := migrations.Up(ctx, pool)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintf(stdout, "schema is up to date (version %d)\n", migrations.Latest)
			return nil
		}
		fmt.Fprintf(stdout, "applied migrations %v; schema version %d\n", applied, migrations.Latest)
		return nil
	}
	version, err := migrations.Version(ctx, pool)
	if err != nil {
		return err
	}
	pending, err := migrations.Pending(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d, this binary needs %d, pending %v\n", version, migrations.Latest, pending)
	if len(pending) > 0 {
		return errors.New("schema is behind: run 'grainline migrate up'")
	}
	return nil
}
