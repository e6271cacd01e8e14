// Package embedded is the truth store on a local pebble database: the
// single-binary default (`grainline dev`). One process owns a data directory.
//
// Durability: every Commit batch is one pebble batch written with a synced
// WAL, so a batch that Commit acknowledged survives kill -9 and power loss.
// Commit calls are serialised in-process under a mutex (the revision and
// idempotency checks read, then the batch writes); reads do not take it.
//
// Outbox: AckOutbox deletes the acknowledged records. Audit records are
// append-only and keyed by aggregate. Timers (timers.go) are written in the
// commit's batch, with a due-time index. Artifacts (artifact.go) are keyed by
// tenant and digest and written on their own, outside commits.
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/grainline/grainline/connectors/truth"
)

var (
	// ErrLocked: another process (or another Store in this one) owns the
	// data directory.
	ErrLocked = errors.New("embedded: data directory is locked")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("embedded: store closed")
)

// Config configures the embedded store.
type Config struct {
	// Dir is the data directory; created if missing. Required.
	Dir string
	// CacheBytes is the block cache size. Default 32 MiB.
	CacheBytes int64
	// MemTableBytes is the size of one memtable. Default 16 MiB.
	MemTableBytes uint64
}

func (c *Config) setDefaults() {
	if c.CacheBytes == 0 {
		c.CacheBytes = 32 << 20
	}
	if c.MemTableBytes == 0 {
		c.MemTableBytes = 16 << 20
	}
}

// Validate reports a missing directory or negative sizes.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("embedded: Config.Dir is required")
	}
	if c.CacheBytes < 0 {
		return errors.New("embedded: Config.CacheBytes must not be negative")
	}
	return nil
}

// Store is the embedded truth store.
type Store struct {
	db   *pebble.DB
	lock *dirLock
	log  *slog.Logger

	// closeMu is held shared by every operation and exclusively by Close, so
	// pebble is never used after it is closed.
	closeMu sync.RWMutex
	closed  bool

	// mu serialises Commit. The counters are the last sequence numbers used.
	mu        sync.Mutex
	outboxSeq int64
	auditSeq  int64
	// heads caches the audit chain heads read so far, by tenant.
	heads map[string]truth.ChainHead

	// artMu serialises PutArtifact (check, then write).
	artMu sync.Mutex

	// attemptMu serialises the attempt record writes (attempts.go).
	attemptMu sync.Mutex
}

var _ truth.Store = (*Store)(nil)

// Open opens (or creates) the store in cfg.Dir. It fails with ErrLocked when
// another process holds the directory.
func Open(cfg Config, log *slog.Logger) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded: create %s: %w", cfg.Dir, err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:              cache,
		MemTableSize:       cfg.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{log},
	}
	// Bloom filters let lookups of absent keys (a new aggregate's snapshot,
	// an unused idempotency key) skip the tables that cannot hold them.
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		_ = lock.release()
		return nil, fmt.Errorf("embedded: open pebble in %s (is another process using it?): %w", cfg.Dir, err)
	}
	s := &Store{db: db, lock: lock, log: log, heads: map[string]truth.ChainHead{}}
	if s.outboxSeq, err = s.recoverSeq(metaOutboxSeq, []byte{tagOutbox}); err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.auditSeq, err = s.readCounter(metaAuditSeq); err != nil {
		_ = s.Close()
		return nil, err
	}
	log.Info("embedded truth store open", "dir", cfg.Dir, "outbox_seq", s.outboxSeq, "audit_seq", s.auditSeq)
	return s, nil
}

func (s *Store) readCounter(key []byte) (int64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("embedded: read counter %q: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: counter %q", errCorrupt, key)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// recoverSeq returns the larger of the persisted counter and the last key
// under prefix (the counter is written in the same batch, so they agree; the
// key check guards against a counter that was lost or never written).
func (s *Store) recoverSeq(meta, prefix []byte) (int64, error) {
	seq, err := s.readCounter(meta)
	if err != nil {
		return 0, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("embedded: scan: %w", err)
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		if len(k) == len(prefix)+8 {
			if last := int64(binary.BigEndian.Uint64(k[len(prefix):])); last > seq {
				seq = last
			}
		}
	}
	return seq, it.Error()
}

func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.closeMu.RUnlock() }

// Close flushes and closes the database and releases the directory.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.db.Close()
	if lerr := s.lock.release(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("embedded: close: %w", err)
	}
	return nil
}

// Load implements truth.Store.
func (s *Store) Load(ctx context.Context, key truth.Key) (truth.Snapshot, error) {
	if err := s.enter(); err != nil {
		return truth.Snapshot{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return truth.Snapshot{}, err
	}
	v, closer, err := s.db.Get(snapshotKey(key.Tenant, key.Kind, key.ID))
	if errors.Is(err, pebble.ErrNotFound) {
		return truth.Snapshot{}, fmt.Errorf("%w: snapshot %s/%s/%s", truth.ErrNotFound, key.Tenant, key.Kind, key.ID)
	}
	if err != nil {
		return truth.Snapshot{}, fmt.Errorf("embedded: load: %w", err)
	}
	defer closer.Close()
	d := dec{b: v}
	snap := truth.Snapshot{Key: key, Revision: d.i64(), UpdatedAt: d.time(), State: d.bytes()}
	if d.err != nil {
		return truth.Snapshot{}, fmt.Errorf("embedded: load %s/%s/%s: %w", key.Tenant, key.Kind, key.ID, d.err)
	}
	return snap, nil
}

// revisionOf returns the stored revision under a snapshot key, 0 if none.
func (s *Store) revisionOf(sk []byte) (int64, error) {
	v, closer, err := s.db.Get(sk)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	d := dec{b: v}
	rev := d.i64()
	return rev, d.err
}

func (s *Store) has(key []byte) (bool, error) {
	_, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// Commit implements truth.Store. Commits are applied in batch order and each
// sees the earlier successful commits of the same batch: two commits to one
// aggregate chain when the second expects the first's revision. The
// idempotency key is checked before the revision, so a repeated command
// reports ErrIdempotencyConflict even when its revision is stale too.
func (s *Store) Commit(ctx context.Context, batch []truth.Commit) ([]error, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	results := make([]error, len(batch))
	b := s.db.NewBatch()
	defer b.Close()
	revs := map[string]int64{} // snapshot key -> revision after earlier commits in this batch
	idems := map[string]bool{} // idempotency keys recorded earlier in this batch
	outSeq, audSeq := s.outboxSeq, s.auditSeq
	timers := &timerOverlay{s: s, changed: map[string]*timerRec{}}
	heads := map[string]truth.ChainHead{} // chain heads moved by this batch
	winners := 0
	for i := range batch {
		c := &batch[i]
		if err := errors.Join(c.Validate(), c.ValidateTimers()); err != nil {
			results[i] = err
			continue
		}
		k := c.Snapshot.Key
		var ik []byte
		if c.Idempotency != nil {
			ik = idemKey(c.Idempotency.Tenant, c.Idempotency.Key)
			dup := idems[string(ik)]
			if !dup {
				var err error
				if dup, err = s.has(ik); err != nil {
					return nil, fmt.Errorf("embedded: commit: read idempotency: %w", err)
				}
			}
			if dup {
				results[i] = fmt.Errorf("%w: tenant %s key %q", truth.ErrIdempotencyConflict, c.Idempotency.Tenant, c.Idempotency.Key)
				continue
			}
		}
		sk := snapshotKey(k.Tenant, k.Kind, k.ID)
		cur, ok := revs[string(sk)]
		if !ok {
			var err error
			if cur, err = s.revisionOf(sk); err != nil {
				return nil, fmt.Errorf("embedded: commit: read revision: %w", err)
			}
		}
		if cur != c.ExpectedRevision {
			results[i] = fmt.Errorf("%w: %s/%s/%s is at %d, commit expected %d",
				truth.ErrRevisionConflict, k.Tenant, k.Kind, k.ID, cur, c.ExpectedRevision)
			continue
		}

		var e enc
		e.i64(c.Snapshot.Revision)
		e.time(c.Snapshot.UpdatedAt)
		e.bytes(c.Snapshot.State)
		if err := b.Set(sk, e.b, nil); err != nil {
			return nil, fmt.Errorf("embedded: commit: %w", err)
		}
		if ik != nil {
			if err := b.Set(ik, encodeIdem(c.Idempotency), nil); err != nil {
				return nil, fmt.Errorf("embedded: commit: %w", err)
			}
			idems[string(ik)] = true
		}
		for j := range c.Events {
			outSeq++
			if err := b.Set(outboxKey(outSeq), encodeEvent(&c.Events[j]), nil); err != nil {
				return nil, fmt.Errorf("embedded: commit: %w", err)
			}
		}
		for j := range c.Audit {
			// The stored record is the aggregate's tenant and key, as in
			// the PostgreSQL store, chained after the tenant's head.
			a := c.Audit[j]
			a.Tenant, a.Aggregate = k.Tenant, k
			head, ok := heads[k.Tenant]
			if !ok {
				var err error
				if head, err = s.head(k.Tenant); err != nil {
					return nil, fmt.Errorf("embedded: commit: %w", err)
				}
			}
			heads[k.Tenant] = head.Link(&a)
			audSeq++
			ak := auditKey(k.Tenant, k.Kind, k.ID, audSeq)
			if err := errors.Join(
				b.Set(ak, encodeAudit(&a), nil),
				b.Set(chainKey(k.Tenant, a.Seq), ak, nil),
				b.Set(headKey(k.Tenant), encodeHead(heads[k.Tenant]), nil),
			); err != nil {
				return nil, fmt.Errorf("embedded: commit: %w", err)
			}
		}
		if err := timers.apply(b, k, c.Timers); err != nil {
			return nil, fmt.Errorf("embedded: commit: %w", err)
		}
		revs[string(sk)] = c.Snapshot.Revision
		winners++
	}
	if winners == 0 {
		return results, nil
	}
	if err := b.Set(metaOutboxSeq, binary.BigEndian.AppendUint64(nil, uint64(outSeq)), nil); err != nil {
		return nil, fmt.Errorf("embedded: commit: %w", err)
	}
	if err := b.Set(metaAuditSeq, binary.BigEndian.AppendUint64(nil, uint64(audSeq)), nil); err != nil {
		return nil, fmt.Errorf("embedded: commit: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("embedded: commit: write batch: %w", err)
	}
	s.outboxSeq, s.auditSeq = outSeq, audSeq
	for t, h := range heads {
		s.heads[t] = h
	}
	return results, nil
}

func encodeIdem(r *truth.Idempotency) []byte {
	var e enc
	e.str(r.Tenant)
	e.str(r.Key)
	e.str(r.Aggregate.Tenant)
	e.str(r.Aggregate.Kind)
	e.str(r.Aggregate.ID)
	e.str(r.Command)
	e.bytes(r.RequestHash)
	e.i64(r.Revision)
	e.bytes(r.Response)
	e.time(r.CreatedAt)
	return e.b
}

func decodeIdem(v []byte) (truth.Idempotency, error) {
	d := dec{b: v}
	r := truth.Idempotency{
		Tenant: d.str(), Key: d.str(),
		Aggregate: truth.Key{Tenant: d.str(), Kind: d.str(), ID: d.str()},
		Command:   d.str(), RequestHash: d.bytes(), Revision: d.i64(), Response: d.bytes(), CreatedAt: d.time(),
	}
	return r, d.err
}

func encodeEvent(ev *truth.Event) []byte {
	var e enc
	e.str(ev.EventID)
	e.str(ev.Type)
	e.i64(int64(ev.Version))
	e.str(ev.Topic)
	e.str(ev.Tenant)
	e.str(ev.AggregateKind)
	e.str(ev.AggregateID)
	e.i64(ev.Revision)
	e.time(ev.OccurredAt)
	e.str(ev.Producer)
	e.str(ev.CorrelationID)
	e.str(ev.CausationID)
	e.bytes(ev.Payload)
	return e.b
}

func decodeEvent(v []byte) (truth.Event, error) {
	d := dec{b: v}
	ev := truth.Event{
		EventID: d.str(), Type: d.str(), Version: int(d.i64()), Topic: d.str(), Tenant: d.str(),
		AggregateKind: d.str(), AggregateID: d.str(), Revision: d.i64(), OccurredAt: d.time(),
		Producer: d.str(), CorrelationID: d.str(), CausationID: d.str(), Payload: d.bytes(),
	}
	return ev, d.err
}

func encodeAudit(a *truth.Audit) []byte {
	var e enc
	e.str(a.Tenant)
	e.str(a.Aggregate.Tenant)
	e.str(a.Aggregate.Kind)
	e.str(a.Aggregate.ID)
	e.i64(a.Revision)
	e.str(a.Actor)
	e.str(a.Action)
	e.str(a.Reason)
	e.str(a.CorrelationID)
	e.time(a.At)
	e.bytes(a.Detail)
	e.i64(a.Seq)
	e.bytes(a.PrevHash)
	e.bytes(a.Hash)
	return e.b
}

func decodeAudit(v []byte) (truth.Audit, error) {
	d := dec{b: v}
	a := truth.Audit{
		Tenant:    d.str(),
		Aggregate: truth.Key{Tenant: d.str(), Kind: d.str(), ID: d.str()},
		Revision:  d.i64(), Actor: d.str(), Action: d.str(), Reason: d.str(), CorrelationID: d.str(),
		At: d.time(), Detail: d.bytes(),
	}
	// Records written before the chain existed end here: they keep Seq 0
	// and are not part of any chain (ADR 0014).
	if d.err == nil && len(d.b) > 0 {
		a.Seq, a.PrevHash, a.Hash = d.i64(), d.bytes(), d.bytes()
	}
	return a, d.err
}

// Idempotency implements truth.Store.
func (s *Store) Idempotency(ctx context.Context, tenant, key string) (truth.Idempotency, error) {
	if err := s.enter(); err != nil {
		return truth.Idempotency{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return truth.Idempotency{}, err
	}
	v, closer, err := s.db.Get(idemKey(tenant, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return truth.Idempotency{}, fmt.Errorf("%w: idempotency key %q in tenant %s", truth.ErrNotFound, key, tenant)
	}
	if err != nil {
		return truth.Idempotency{}, fmt.Errorf("embedded: idempotency: %w", err)
	}
	defer closer.Close()
	r, err := decodeIdem(v)
	if err != nil {
		return truth.Idempotency{}, fmt.Errorf("embedded: idempotency %q: %w", key, err)
	}
	return r, nil
}

// PendingOutbox implements truth.Store.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]truth.OutboxRecord, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagOutbox}, UpperBound: []byte{tagOutbox + 1}})
	if err != nil {
		return nil, fmt.Errorf("embedded: outbox scan: %w", err)
	}
	defer it.Close()
	var out []truth.OutboxRecord
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return nil, fmt.Errorf("%w: outbox key %x", errCorrupt, k)
		}
		ev, err := decodeEvent(it.Value())
		if err != nil {
			return nil, fmt.Errorf("embedded: outbox record: %w", err)
		}
		out = append(out, truth.OutboxRecord{Seq: int64(binary.BigEndian.Uint64(k[1:])), Event: ev})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: outbox scan: %w", err)
	}
	return out, nil
}

// AckOutbox implements truth.Store: it deletes the records (synced). Acking
// an unknown or already acknowledged seq is not an error.
func (s *Store) AckOutbox(ctx context.Context, seqs []int64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(seqs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, seq := range seqs {
		if err := b.Delete(outboxKey(seq), nil); err != nil {
			return fmt.Errorf("embedded: ack: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("embedded: ack: %w", err)
	}
	return nil
}

// AuditTrail returns the audit records of one aggregate in the order they
// were committed.
func (s *Store) AuditTrail(ctx context.Context, key truth.Key) ([]truth.Audit, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := auditPrefix(key.Tenant, key.Kind, key.ID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("embedded: audit scan: %w", err)
	}
	defer it.Close()
	var out []truth.Audit
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != len(p)+8 || !bytes.HasPrefix(it.Key(), p) {
			return nil, fmt.Errorf("%w: audit key %x", errCorrupt, it.Key())
		}
		a, err := decodeAudit(it.Value())
		if err != nil {
			return nil, fmt.Errorf("embedded: audit record: %w", err)
		}
		out = append(out, a)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: audit scan: %w", err)
	}
	return out, nil
}

// pebbleLogger sends pebble's log lines to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by pebble on unrecoverable corruption; pebble requires it
// not to return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
