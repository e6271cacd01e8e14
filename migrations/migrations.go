// Package migrations holds the versioned PostgreSQL schema of the truth store
// and applies it. Files are named NNNN_name.up.sql / NNNN_name.down.sql and
// embedded into the binary. Applied versions are recorded in
// schema_migrations. Only the dedicated `migrate` role calls Up or Down;
// production roles check the version (postgres.Store.CheckSchema) and refuse
// to run on a database that is behind, but never migrate it themselves.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Latest is the highest migration version this binary knows. A test keeps it
// equal to the newest file.
const Latest = 5

// lockKey is the pg advisory lock key that serialises migrators.
const lockKey int64 = 0x6772_6e6c_6d69_6772 // "grnlmigr"

//go:embed *.sql
var files embed.FS

// ErrBadMigration: the embedded files are inconsistent (a version without its
// up or down file, a duplicate version, a name that does not parse).
var ErrBadMigration = errors.New("migrations: bad migration file set")

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$`)

// All returns the embedded migrations in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: read embedded files: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%w: %q does not match NNNN_name.(up|down).sql", ErrBadMigration, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: read %s: %w", e.Name(), err)
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		}
		if mig.Name != m[2] {
			return nil, fmt.Errorf("%w: version %d has two names (%s, %s)", ErrBadMigration, v, mig.Name, m[2])
		}
		if m[3] == "up" {
			mig.Up = string(body)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("%w: version %d needs both an up and a down file", ErrBadMigration, m.Version)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Querier is what Version needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Applied returns the versions recorded in schema_migrations, ascending; an
// empty slice when the table does not exist yet.
func Applied(ctx context.Context, q Querier) ([]int, error) {
	rows, err := q.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		if isUndefinedTable(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("migrations: read schema_migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		if isUndefinedTable(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("migrations: read schema_migrations: %w", err)
	}
	return vs, nil
}

// Version returns the highest applied version, 0 for an empty database.
func Version(ctx context.Context, q Querier) (int, error) {
	vs, err := Applied(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, nil
	}
	return vs[len(vs)-1], nil
}

// Pending returns the known versions not yet applied to the database.
func Pending(ctx context.Context, q Querier) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	applied, err := Applied(ctx, q)
	if err != nil {
		return nil, err
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	var out []int
	for _, m := range all {
		if !done[m.Version] {
			out = append(out, m.Version)
		}
	}
	return out, nil
}

// Up applies every pending migration, each in its own transaction together
// with its schema_migrations row, and returns the versions it applied. It
// holds a session advisory lock while it works, so concurrent migrators wait
// for each other and the second finds nothing left to do.
func Up(ctx context.Context, pool *pgxpool.Pool) (applied []int, err error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	err = withLock(ctx, pool, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("migrations: create schema_migrations: %w", err)
		}
		pending, err := Pending(ctx, conn)
		if err != nil {
			return err
		}
		todo := map[int]bool{}
		for _, v := range pending {
			todo[v] = true
		}
		for _, m := range all {
			if !todo[m.Version] {
				continue
			}
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, m.Up); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version)
				return err
			}); err != nil {
				return fmt.Errorf("migrations: apply %04d_%s: %w", m.Version, m.Name, err)
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	return applied, err
}

// Down reverts applied migrations above target, newest first, and returns the
// versions it reverted. Down(ctx, pool, 0) empties the schema.
func Down(ctx context.Context, pool *pgxpool.Pool, target int) (reverted []int, err error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	byVersion := map[int]Migration{}
	for _, m := range all {
		byVersion[m.Version] = m
	}
	err = withLock(ctx, pool, func(conn *pgx.Conn) error {
		applied, err := Applied(ctx, conn)
		if err != nil {
			return err
		}
		for i := len(applied) - 1; i >= 0; i-- {
			v := applied[i]
			if v <= target {
				break
			}
			m, ok := byVersion[v]
			if !ok {
				return fmt.Errorf("%w: database has version %d that this binary does not know", ErrBadMigration, v)
			}
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, m.Down); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, v)
				return err
			}); err != nil {
				return fmt.Errorf("migrations: revert %04d_%s: %w", m.Version, m.Name, err)
			}
			reverted = append(reverted, v)
		}
		return nil
	})
	return reverted, err
}

func withLock(ctx context.Context, pool *pgxpool.Pool, fn func(*pgx.Conn) error) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrations: acquire connection: %w", err)
	}
	defer c.Release()
	conn := c.Conn()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("migrations: take migration lock: %w", err)
	}
	fnErr := fn(conn)
	// Unlock on a fresh context: ctx may be the reason fn failed.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
		// The session ends with the connection, and with it the lock.
		_ = conn.Close(uctx)
		if fnErr == nil {
			return fmt.Errorf("migrations: release migration lock: %w", err)
		}
	}
	return fnErr
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
