// Package postgres is the truth store on PostgreSQL (pgx). The schema comes
// from the migrations package and is applied by the migrate role; Open never
// migrates, and production roles call CheckSchema at start-up.
//
// Commit writes a whole batch in one transaction of two pipelined round
// trips, and chains its audit records per tenant after the tenant's head row
// in audit_heads, locked until the transaction ends (see commit.go). AckOutbox marks records published
// (published_at) rather than deleting them; PruneOutbox deletes published
// records older than a cut-off. Several relays may poll PendingOutbox; the
// one that holds TryRelayLock publishes. Durable timers are rows of the
// timers table written by Commit; several nodes may poll DueTimers, which
// claims due rows with FOR UPDATE SKIP LOCKED and a lease (timers.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/migrations"
)

var (
	// ErrSchemaBehind: the database lacks migrations this binary needs.
	ErrSchemaBehind = errors.New("postgres: database schema is behind")
	// ErrRelayLockLost: the relay lock's session no longer holds the lock
	// (the session ended, the check timed out, or release was called).
	ErrRelayLockLost = errors.New("postgres: relay lock lost")
)

// relayLockKey is the advisory lock key of the outbox relay.
const relayLockKey int64 = 0x6772_6e6c_7265_6c79 // "grnlrely"

// Config configures the PostgreSQL store.
type Config struct {
	// DSN is a libpq URL or key=value string. Required. Never logged.
	DSN string
	// MaxConns bounds the pool. Default 16.
	MaxConns int32
	// MinConns kept open. Default 0.
	MinConns int32
	// ConnectTimeout bounds Open's first connection. Default 10s.
	ConnectTimeout time.Duration
	// CommitAttempts is how often Commit tries a batch that the server rolled
	// back for a deadlock, a serialisation failure or a lost idempotency
	// race. Default 5.
	CommitAttempts int
	// TimerLease is how long DueTimers keeps a returned timer from other
	// callers (measured on the server's clock). It should exceed the time a
	// poller needs to fire a timer. Default 30s.
	TimerLease time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 16
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.CommitAttempts == 0 {
		c.CommitAttempts = 5
	}
	if c.TimerLease == 0 {
		c.TimerLease = 30 * time.Second
	}
}

// Validate checks the configuration after defaults.
func (c Config) Validate() error {
	switch {
	case c.DSN == "":
		return errors.New("postgres: Config.DSN is required")
	case c.MaxConns < 1:
		return fmt.Errorf("postgres: Config.MaxConns %d must be at least 1", c.MaxConns)
	case c.MinConns < 0 || c.MinConns > c.MaxConns:
		return fmt.Errorf("postgres: Config.MinConns %d must be within 0..MaxConns", c.MinConns)
	case c.ConnectTimeout < 0:
		return errors.New("postgres: Config.ConnectTimeout must not be negative")
	case c.CommitAttempts < 1:
		return fmt.Errorf("postgres: Config.CommitAttempts %d must be at least 1", c.CommitAttempts)
	case c.TimerLease < time.Millisecond:
		return fmt.Errorf("postgres: Config.TimerLease %v must be at least 1ms", c.TimerLease)
	}
	return nil
}

// Store is the PostgreSQL truth store.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
	log  *slog.Logger
}

var _ truth.Store = (*Store)(nil)

// Open connects a pool and checks that the server answers. It does not check
// or change the schema.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// The parse error may quote the DSN; do not pass it on.
		return nil, errors.New("postgres: Config.DSN does not parse")
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = cfg.MinConns
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database, err)
	}
	log.Info("postgres truth store open", "host", pc.ConnConfig.Host, "database", pc.ConnConfig.Database, "max_conns", cfg.MaxConns)
	return &Store{pool: pool, cfg: cfg, log: log}, nil
}

// Pool exposes the connection pool (for migrations and admin tools).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// CheckSchema returns an error wrapping ErrSchemaBehind, naming the missing
// versions, when the database lacks migrations this binary needs. A database
// ahead of the binary is accepted (migrations are additive) and logged.
func (s *Store) CheckSchema(ctx context.Context) error {
	pending, err := migrations.Pending(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("postgres: check schema: %w", err)
	}
	if len(pending) > 0 {
		v, _ := migrations.Version(ctx, s.pool)
		return fmt.Errorf("%w: at version %d, missing %v (binary needs %d): run `grainline migrate`",
			ErrSchemaBehind, v, pending, migrations.Latest)
	}
	if v, err := migrations.Version(ctx, s.pool); err == nil && v > migrations.Latest {
		s.log.Warn("database schema is newer than this binary", "schema_version", v, "binary_version", migrations.Latest)
	}
	return nil
}

// Load implements truth.Store.
func (s *Store) Load(ctx context.Context, key truth.Key) (truth.Snapshot, error) {
	snap := truth.Snapshot{Key: key}
	err := s.pool.QueryRow(ctx,
		`SELECT revision, state, updated_at FROM snapshots WHERE tenant = $1 AND kind = $2 AND id = $3`,
		key.Tenant, key.Kind, key.ID).Scan(&snap.Revision, &snap.State, &snap.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return truth.Snapshot{}, fmt.Errorf("%w: snapshot %s/%s/%s", truth.ErrNotFound, key.Tenant, key.Kind, key.ID)
	}
	if err != nil {
		return truth.Snapshot{}, fmt.Errorf("postgres: load %s/%s/%s: %w", key.Tenant, key.Kind, key.ID, err)
	}
	return snap, nil
}

// Idempotency implements truth.Store.
func (s *Store) Idempotency(ctx context.Context, tenant, key string) (truth.Idempotency, error) {
	r := truth.Idempotency{Tenant: tenant, Key: key, Aggregate: truth.Key{Tenant: tenant}}
	err := s.pool.QueryRow(ctx,
		`SELECT kind, id, command, request_hash, revision, response, created_at
		   FROM idempotency WHERE tenant = $1 AND key = $2`, tenant, key).
		Scan(&r.Aggregate.Kind, &r.Aggregate.ID, &r.Command, &r.RequestHash, &r.Revision, &r.Response, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return truth.Idempotency{}, fmt.Errorf("%w: idempotency key %q in tenant %s", truth.ErrNotFound, key, tenant)
	}
	if err != nil {
		return truth.Idempotency{}, fmt.Errorf("postgres: idempotency: %w", err)
	}
	return r, nil
}

// PendingOutbox implements truth.Store. It takes no locks: relays that must
// not publish concurrently coordinate with TryRelayLock.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]truth.OutboxRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT seq, event_id, topic, tenant, aggregate_kind, aggregate_id, revision, type, version,
		       occurred_at, producer, correlation_id, causation_id, payload
		  FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: pending outbox: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (truth.OutboxRecord, error) {
		var r truth.OutboxRecord
		e := &r.Event
		err := row.Scan(&r.Seq, &e.EventID, &e.Topic, &e.Tenant, &e.AggregateKind, &e.AggregateID, &e.Revision,
			&e.Type, &e.Version, &e.OccurredAt, &e.Producer, &e.CorrelationID, &e.CausationID, &e.Payload)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pending outbox: %w", err)
	}
	return recs, nil
}

// AckOutbox implements truth.Store by setting published_at. Acking an unknown
// or already acknowledged seq is not an error.
func (s *Store) AckOutbox(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx,
		`UPDATE outbox SET published_at = now() WHERE seq = ANY($1) AND published_at IS NULL`, seqs); err != nil {
		return fmt.Errorf("postgres: ack outbox: %w", err)
	}
	return nil
}

// PruneOutbox deletes records published before cutoff and returns how many.
func (s *Store) PruneOutbox(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE published_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}

// auditColumns are the columns scanAudit reads.
const auditColumns = `tenant, kind, id, revision, actor, action, reason, correlation_id, at, detail, chain_seq, prev_hash, hash`

func scanAudit(row pgx.CollectableRow) (truth.Audit, error) {
	var a truth.Audit
	err := row.Scan(&a.Tenant, &a.Aggregate.Kind, &a.Aggregate.ID, &a.Revision, &a.Actor, &a.Action, &a.Reason,
		&a.CorrelationID, &a.At, &a.Detail, &a.Seq, &a.PrevHash, &a.Hash)
	a.Aggregate.Tenant = a.Tenant
	a.At = a.At.UTC()
	return a, err
}

// AuditTrail returns the audit records of one aggregate in commit order.
func (s *Store) AuditTrail(ctx context.Context, key truth.Key) ([]truth.Audit, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+auditColumns+`
		  FROM audit WHERE tenant = $1 AND kind = $2 AND id = $3 ORDER BY seq`, key.Tenant, key.Kind, key.ID)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit trail: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit trail: %w", err)
	}
	return out, nil
}

var _ truth.ChainReader = (*Store)(nil)

// AuditChain implements truth.ChainReader: up to limit records of tenant's
// chain from fromSeq on, in chain order.
func (s *Store) AuditChain(ctx context.Context, tenant string, fromSeq int64, limit int) ([]truth.Audit, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+auditColumns+`
		  FROM audit WHERE tenant = $1 AND chain_seq >= $2 ORDER BY chain_seq LIMIT $3`, tenant, fromSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit chain: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit chain: %w", err)
	}
	return out, nil
}

// AuditHead implements truth.ChainReader: the head row of tenant, Seq 0
// when the tenant has none.
func (s *Store) AuditHead(ctx context.Context, tenant string) (truth.ChainHead, error) {
	var h truth.ChainHead
	err := s.pool.QueryRow(ctx, `SELECT chain_seq, hash FROM audit_heads WHERE tenant = $1`, tenant).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return truth.ChainHead{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("postgres: audit head: %w", err)
	}
	if len(h.Hash) == 0 {
		h.Hash = nil
	}
	return h, nil
}

// TryRelayLock tries to become the one outbox relay that publishes. On
// success it holds a session-level advisory lock on a dedicated connection
// (taken out of the pool) until release is called; if the process dies or the
// session is cut the server frees the lock. ok is false when another relay
// holds it; then no connection is kept.
//
// held reports whether the lock is still ours: it asks the server, on the
// lock's own session, whether pg_locks lists the advisory lock as granted to
// that backend, and returns an error wrapping ErrRelayLockLost when it does
// not, when the session is gone or when ctx ends first (bound ctx with a short
// timeout: a cut network otherwise waits for TCP). After a lost lock the
// caller must stop publishing and call release. held and release are safe for
// concurrent use; release is safe to call more than once, and held after
// release reports the lock lost.
func (s *Store) TryRelayLock(ctx context.Context) (release func(), held func(context.Context) error, ok bool, err error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("postgres: relay lock: acquire connection: %w", err)
	}
	conn := c.Hijack()
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, relayLockKey).Scan(&ok); err != nil {
		closeConn()
		return nil, nil, false, fmt.Errorf("postgres: relay lock: %w", err)
	}
	if !ok {
		closeConn()
		return nil, nil, false, nil
	}
	var (
		mu       sync.Mutex // serialises use of conn
		released bool
	)
	release = func() {
		mu.Lock()
		defer mu.Unlock()
		if !released {
			released = true
			// Ending the session frees the lock.
			closeConn()
		}
	}
	held = func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if released {
			return fmt.Errorf("%w: released", ErrRelayLockLost)
		}
		var n int
		// A bigint advisory lock shows as classid = high 32 bits, objid =
		// low 32 bits, objsubid = 1.
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
			  AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1`, relayLockKey).Scan(&n)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %w", ErrRelayLockLost, err)
		case n == 0:
			return fmt.Errorf("%w: not in pg_locks for this session", ErrRelayLockLost)
		}
		return nil
	}
	return release, held, true, nil
}
