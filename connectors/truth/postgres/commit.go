package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grainline/grainline/connectors/truth"
)

// lockSQL takes the row locks of every existing snapshot a batch touches, in
// key order, before the batch writes: two batches that touch the same
// aggregates then queue instead of deadlocking.
const lockSQL = `
SELECT s.revision FROM snapshots s
WHERE (s.tenant, s.kind, s.id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
ORDER BY s.tenant, s.kind, s.id
FOR UPDATE`

// commitSQL applies one round of a batch (no aggregate and no idempotency key
// twice) in one statement and returns one status per commit: 0 written,
// 1 revision conflict, 2 idempotency key already recorded. If a winner's
// idempotency insert loses a race to a concurrent transaction, truth_abort
// raises GL001 and the whole batch is rolled back and retried. Audit records
// are not written here but chained after it (auditSQL).
const commitSQL = `
WITH c AS (
    SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::bytea[],
                         $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bytea[], $13::int8[],
                         $14::bytea[], $15::timestamptz[])
        AS c(ord, tenant, kind, id, exp_rev, new_rev, state, updated_at,
             i_tenant, i_key, i_command, i_hash, i_rev, i_response, i_created)
),
ok AS (
    SELECT c.* FROM c
    WHERE c.i_key IS NULL
       OR NOT EXISTS (SELECT 1 FROM idempotency x WHERE x.tenant = c.i_tenant AND x.key = c.i_key)
),
ins AS (
    INSERT INTO snapshots (tenant, kind, id, revision, state, updated_at)
    SELECT tenant, kind, id, new_rev, state, updated_at FROM ok WHERE exp_rev = 0
    ORDER BY tenant, kind, id
    ON CONFLICT (tenant, kind, id) DO NOTHING
    RETURNING tenant, kind, id
),
upd AS (
    UPDATE snapshots s SET revision = ok.new_rev, state = ok.state, updated_at = ok.updated_at
    FROM ok
    WHERE ok.exp_rev > 0 AND s.tenant = ok.tenant AND s.kind = ok.kind AND s.id = ok.id AND s.revision = ok.exp_rev
    RETURNING s.tenant, s.kind, s.id
),
won AS (
    SELECT ok.* FROM ok
    JOIN (SELECT * FROM ins UNION ALL SELECT * FROM upd) w
      ON w.tenant = ok.tenant AND w.kind = ok.kind AND w.id = ok.id
),
idem AS (
    INSERT INTO idempotency (tenant, key, kind, id, command, request_hash, revision, response, created_at)
    SELECT i_tenant, i_key, kind, id, i_command, i_hash, i_rev, i_response, i_created
    FROM won WHERE i_key IS NOT NULL
    ORDER BY i_tenant, i_key
    ON CONFLICT (tenant, key) DO NOTHING
    RETURNING tenant, key
),
ev AS (
    INSERT INTO outbox (event_id, topic, tenant, aggregate_kind, aggregate_id, revision, type, version,
                        occurred_at, producer, correlation_id, causation_id, payload)
    SELECT e.event_id, e.topic, e.tenant, e.aggregate_kind, e.aggregate_id, e.revision, e.type, e.version,
           e.occurred_at, e.producer, e.correlation_id, e.causation_id, e.payload
    FROM unnest($16::int4[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::int8[],
                $23::text[], $24::int4[], $25::timestamptz[], $26::text[], $27::text[], $28::text[], $29::bytea[])
         WITH ORDINALITY
         AS e(ord, event_id, topic, tenant, aggregate_kind, aggregate_id, revision, type, version,
              occurred_at, producer, correlation_id, causation_id, payload, n)
    JOIN won ON won.ord = e.ord
    ORDER BY e.n
    RETURNING seq
),
tc AS (
    SELECT won.tenant, won.kind, won.id, t.timer_id, t.cancel, t.if_at, t.due_at, t.command, t.payload
    FROM unnest($30::int4[], $31::text[], $32::bool[], $33::timestamptz[], $34::timestamptz[], $35::text[],
                $36::bytea[])
         AS t(ord, timer_id, cancel, if_at, due_at, command, payload)
    JOIN won ON won.ord = t.ord
),
tset AS (
    INSERT INTO timers (tenant, kind, id, timer_id, due_at, command, payload, leased_until)
    SELECT tenant, kind, id, timer_id, due_at, command, payload, NULL FROM tc WHERE NOT cancel
    ORDER BY tenant, kind, id, timer_id
    ON CONFLICT (tenant, kind, id, timer_id) DO UPDATE
        SET due_at = EXCLUDED.due_at, command = EXCLUDED.command, payload = EXCLUDED.payload, leased_until = NULL
    RETURNING 1
),
tdel AS (
    DELETE FROM timers x USING tc
    WHERE tc.cancel AND x.tenant = tc.tenant AND x.kind = tc.kind AND x.id = tc.id AND x.timer_id = tc.timer_id
      AND (tc.if_at IS NULL OR x.due_at = tc.if_at)
    RETURNING 1
)
SELECT c.ord,
       CASE
           WHEN ok.ord IS NULL THEN 2
           WHEN won.ord IS NULL THEN 1
           WHEN won.i_key IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM idem WHERE idem.tenant = won.i_tenant AND idem.key = won.i_key)
               THEN CASE WHEN truth_abort('idempotency key ' || won.i_key || ' recorded concurrently') THEN 2 ELSE 2 END
           ELSE 0
       END
FROM c
LEFT JOIN ok ON ok.ord = c.ord
LEFT JOIN won ON won.ord = c.ord`

// headsSQL creates the chain heads of the batch's tenants that do not exist
// yet and headLockSQL locks them all, in tenant order (after the snapshot
// rows: every batch takes its locks in that order). Holding a tenant's head
// until the transaction ends serialises the tenant's chain across nodes.
const (
	headsSQL = `
INSERT INTO audit_heads (tenant, chain_seq, hash)
SELECT t, 0, '\x'::bytea FROM unnest($1::text[]) t ORDER BY t
ON CONFLICT (tenant) DO NOTHING`
	headLockSQL = `
SELECT tenant, chain_seq, hash FROM audit_heads WHERE tenant = ANY($1::text[]) ORDER BY tenant FOR UPDATE`
	auditSQL = `
INSERT INTO audit (tenant, kind, id, revision, actor, action, reason, correlation_id, at, detail,
                   chain_seq, prev_hash, hash)
SELECT tenant, kind, id, revision, actor, action, reason, correlation_id, at, detail, chain_seq, prev_hash, hash
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::timestamptz[], $10::bytea[], $11::int8[], $12::bytea[], $13::bytea[])
    WITH ORDINALITY AS a(tenant, kind, id, revision, actor, action, reason, correlation_id, at, detail,
                         chain_seq, prev_hash, hash, n)
ORDER BY n`
	headMoveSQL = `
UPDATE audit_heads h SET chain_seq = x.chain_seq, hash = x.hash
FROM unnest($1::text[], $2::int8[], $3::bytea[]) AS x(tenant, chain_seq, hash)
WHERE h.tenant = x.tenant`
)

// Commit implements truth.Store: the whole batch is one transaction of two
// pipelined round trips. The first locks the snapshot rows, applies the
// commits and locks the audit chain heads of the batch's tenants; the second
// writes the winners' audit records, chained in batch order after those
// heads (truth.ChainHead.Link), moves the heads and commits. Commits are applied in batch order and each
// sees the earlier successful commits of the batch (a commit that repeats an
// aggregate or an idempotency key of an earlier one goes into a later
// statement of the same transaction). The idempotency key is checked before
// the revision. Deadlocks, serialisation failures and a lost idempotency race
// roll the batch back; it is then retried up to Config.CommitAttempts times.
func (s *Store) Commit(ctx context.Context, batch []truth.Commit) ([]error, error) {
	results := make([]error, len(batch))
	var valid []int
	for i := range batch {
		if err := errors.Join(batch[i].Validate(), batch[i].ValidateTimers()); err != nil {
			results[i] = err
			continue
		}
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		return results, nil
	}
	rounds := planRounds(batch, valid)
	var err error
	for attempt := 1; ; attempt++ {
		var status map[int]int32
		status, err = s.commitOnce(ctx, batch, rounds)
		if err == nil {
			for _, i := range valid {
				results[i] = statusError(status[i], &batch[i])
			}
			return results, nil
		}
		if !retryable(err) || attempt >= s.cfg.CommitAttempts || ctx.Err() != nil {
			break
		}
		s.log.Debug("truth commit retried", "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("postgres: commit batch of %d: %w", len(batch), err)
}

func statusError(st int32, c *truth.Commit) error {
	k := c.Snapshot.Key
	switch st {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %s/%s/%s is not at revision %d", truth.ErrRevisionConflict, k.Tenant, k.Kind, k.ID, c.ExpectedRevision)
	default:
		return fmt.Errorf("%w: tenant %s key %q", truth.ErrIdempotencyConflict, c.Idempotency.Tenant, c.Idempotency.Key)
	}
}

// planRounds splits the valid commits into rounds so that no round holds one
// aggregate or one idempotency key twice; a commit goes to the round after
// the last one that holds its aggregate or its key, keeping batch order.
func planRounds(batch []truth.Commit, valid []int) [][]int {
	lastAgg := map[truth.Key]int{}
	lastIdem := map[[2]string]int{}
	var rounds [][]int
	for _, i := range valid {
		c := &batch[i]
		r := 0
		if p, ok := lastAgg[c.Snapshot.Key]; ok {
			r = p + 1
		}
		var ik [2]string
		if c.Idempotency != nil {
			ik = [2]string{c.Idempotency.Tenant, c.Idempotency.Key}
			if p, ok := lastIdem[ik]; ok && p+1 > r {
				r = p + 1
			}
			lastIdem[ik] = r
		}
		lastAgg[c.Snapshot.Key] = r
		for len(rounds) <= r {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	return rounds
}

func (s *Store) commitOnce(ctx context.Context, batch []truth.Commit, rounds [][]int) (map[int]int32, error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	// Lock every existing row the batch touches, in key order.
	keys := map[truth.Key]bool{}
	tenantSet := map[string]bool{}
	for _, round := range rounds {
		for _, i := range round {
			keys[batch[i].Snapshot.Key] = true
			if len(batch[i].Audit) > 0 {
				tenantSet[batch[i].Snapshot.Key.Tenant] = true
			}
		}
	}
	sorted := make([]truth.Key, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.ID < b.ID
	})
	var lt, lk, li []string
	for _, k := range sorted {
		lt, lk, li = append(lt, k.Tenant), append(lk, k.Kind), append(li, k.ID)
	}
	b.Queue(lockSQL, lt, lk, li)
	for _, round := range rounds {
		b.Queue(commitSQL, roundArgs(batch, round)...)
	}
	tenants := make([]string, 0, len(tenantSet))
	for t := range tenantSet {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	if len(tenants) > 0 {
		b.Queue(headsSQL, tenants)
		b.Queue(headLockSQL, tenants)
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	status := make(map[int]int32, len(batch))
	heads := make(map[string]truth.ChainHead, len(tenants))
	err = func() error {
		br := conn.SendBatch(ctx, b)
		err := func() error {
			for range 2 { // BEGIN, locks
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			for range rounds {
				rows, err := br.Query()
				if err != nil {
					return err
				}
				for rows.Next() {
					var ord, st int32
					if err := rows.Scan(&ord, &st); err != nil {
						rows.Close()
						return err
					}
					status[int(ord)] = st
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
			}
			if len(tenants) == 0 {
				return nil
			}
			if _, err := br.Exec(); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var t string
				var h truth.ChainHead
				if err := rows.Scan(&t, &h.Seq, &h.Hash); err != nil {
					rows.Close()
					return err
				}
				heads[t] = h
			}
			rows.Close()
			return rows.Err()
		}()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		b2 := &pgx.Batch{}
		if args, moved := chainArgs(batch, status, heads); moved != nil {
			b2.Queue(auditSQL, args...)
			b2.Queue(headMoveSQL, moved...)
		}
		b2.Queue(`COMMIT`)
		// Close reads the final Sync: only then is the transaction
		// committed, or its error known.
		return conn.SendBatch(ctx, b2).Close()
	}()
	if err != nil {
		// Roll back on a fresh context: ctx may be why the batch failed. A
		// connection that cannot roll back is closed, and the server ends
		// the transaction with it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, `ROLLBACK`); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
		return nil, err
	}
	return status, nil
}

// chainArgs chains the audit records of the batch's winners in batch order
// after heads, and returns the arguments of auditSQL and of headMoveSQL (nil
// when no record is written). Records carry the aggregate's tenant and key
// and At at stored precision, so the hash is over the stored values.
func chainArgs(batch []truth.Commit, status map[int]int32, heads map[string]truth.ChainHead) (audit, moved []any) {
	var recs []truth.Audit
	for i := range batch {
		st, ok := status[i]
		if !ok || st != 0 {
			continue
		}
		k := batch[i].Snapshot.Key
		for j := range batch[i].Audit {
			a := batch[i].Audit[j]
			a.Tenant, a.Aggregate = k.Tenant, k
			recs = append(recs, a)
		}
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return linkAudits(recs, heads)
}

// retryable reports errors after which the server rolled the batch back and
// a retry may succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40P01", // deadlock_detected
		"40001", // serialization_failure
		"GL001": // truth_abort: idempotency race
		return true
	}
	return false
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func roundArgs(batch []truth.Commit, round []int) []any {
	n := len(round)
	var (
		ord                                      = make([]int32, 0, n)
		tenant, kind, id                         = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		expRev, newRev, iRev                     = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		state, iHash, iResp                      = make([][]byte, 0, n), make([][]byte, 0, n), make([][]byte, 0, n)
		updated, iCreated                        = make([]time.Time, 0, n), make([]time.Time, 0, n)
		iTenant, iCommand                        = make([]string, 0, n), make([]string, 0, n)
		iKey                                     = make([]*string, 0, n)
		eOrd, eVersion                           []int32
		eID, eTopic, eTenant, eKind, eAgg, eType []string
		eProducer, eCorr, eCause                 []string
		eRev                                     []int64
		eAt                                      []time.Time
		ePayload                                 [][]byte
		tOrd                                     []int32
		tID, tCommand                            []string
		tCancel                                  []bool
		tIfAt                                    []*time.Time
		tAt                                      []time.Time
		tPayload                                 [][]byte
	)
	for _, i := range round {
		c := &batch[i]
		k := c.Snapshot.Key
		ord = append(ord, int32(i))
		tenant, kind, id = append(tenant, k.Tenant), append(kind, k.Kind), append(id, k.ID)
		expRev, newRev = append(expRev, c.ExpectedRevision), append(newRev, c.Snapshot.Revision)
		state, updated = append(state, orEmpty(c.Snapshot.State)), append(updated, c.Snapshot.UpdatedAt)
		if r := c.Idempotency; r != nil {
			key := r.Key
			iTenant, iKey, iCommand = append(iTenant, r.Tenant), append(iKey, &key), append(iCommand, r.Command)
			iHash, iRev, iResp = append(iHash, orEmpty(r.RequestHash)), append(iRev, r.Revision), append(iResp, orEmpty(r.Response))
			iCreated = append(iCreated, r.CreatedAt)
		} else {
			iTenant, iKey, iCommand = append(iTenant, ""), append(iKey, nil), append(iCommand, "")
			iHash, iRev, iResp = append(iHash, []byte{}), append(iRev, 0), append(iResp, []byte{})
			iCreated = append(iCreated, time.Time{})
		}
		for j := range c.Events {
			e := &c.Events[j]
			eOrd, eID, eTopic, eTenant = append(eOrd, int32(i)), append(eID, e.EventID), append(eTopic, e.Topic), append(eTenant, e.Tenant)
			eKind, eAgg, eRev, eType = append(eKind, e.AggregateKind), append(eAgg, e.AggregateID), append(eRev, e.Revision), append(eType, e.Type)
			eVersion, eAt, eProducer = append(eVersion, int32(e.Version)), append(eAt, e.OccurredAt), append(eProducer, e.Producer)
			eCorr, eCause, ePayload = append(eCorr, e.CorrelationID), append(eCause, e.CausationID), append(ePayload, orEmpty(e.Payload))
		}
		for j := range c.Timers {
			tm := &c.Timers[j]
			var ifAt *time.Time
			if !tm.IfAt.IsZero() {
				v := truth.TimerTime(tm.IfAt)
				ifAt = &v
			}
			tOrd, tID, tCancel, tIfAt = append(tOrd, int32(i)), append(tID, tm.TimerID), append(tCancel, tm.Cancel), append(tIfAt, ifAt)
			tAt, tCommand, tPayload = append(tAt, truth.TimerTime(tm.At)), append(tCommand, tm.Command), append(tPayload, orEmpty(tm.Payload))
		}
	}
	return []any{
		ord, tenant, kind, id, expRev, newRev, state, updated,
		iTenant, iKey, iCommand, iHash, iRev, iResp, iCreated,
		eOrd, eID, eTopic, eTenant, eKind, eAgg, eRev, eType, eVersion, eAt, eProducer, eCorr, eCause, ePayload,
		tOrd, tID, tCancel, tIfAt, tAt, tCommand, tPayload,
	}
}
