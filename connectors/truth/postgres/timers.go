package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.TimerStore = (*Store)(nil)

// claimSQL leases up to $2 timers due at or before $1 that nobody holds a
// live lease on. SKIP LOCKED lets concurrent pollers claim disjoint rows
// instead of queueing on each other; the lease (leased_until, on the
// server's clock) keeps a claimed timer from the other pollers until it has
// been fired and cancelled, or until the lease runs out (the poller died or
// the command failed transiently): then the timer is claimed again.
const claimSQL = `
UPDATE timers t SET leased_until = clock_timestamp() + $3::bigint * interval '1 microsecond'
FROM (
    SELECT tenant, kind, id, timer_id FROM timers
    WHERE due_at <= $1 AND (leased_until IS NULL OR leased_until <= clock_timestamp())
    ORDER BY due_at, tenant, kind, id, timer_id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) c
WHERE t.tenant = c.tenant AND t.kind = c.kind AND t.id = c.id AND t.timer_id = c.timer_id
RETURNING t.tenant, t.kind, t.id, t.timer_id, t.due_at, t.command, t.payload`

// DueTimers implements truth.TimerStore: it returns and leases (for
// Config.TimerLease) up to limit due timers that no other caller holds.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]truth.DueTimer, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, claimSQL, truth.TimerTime(now), limit, s.cfg.TimerLease.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: due timers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (truth.DueTimer, error) {
		var d truth.DueTimer
		err := row.Scan(&d.Key.Tenant, &d.Key.Kind, &d.Key.ID, &d.TimerID, &d.At, &d.Command, &d.Payload)
		d.At = d.At.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: due timers: %w", err)
	}
	// RETURNING does not keep the sub-select's order.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if a.Key != b.Key {
			if a.Key.Tenant != b.Key.Tenant {
				return a.Key.Tenant < b.Key.Tenant
			}
			if a.Key.Kind != b.Key.Kind {
				return a.Key.Kind < b.Key.Kind
			}
			return a.Key.ID < b.Key.ID
		}
		return a.TimerID < b.TimerID
	})
	return out, nil
}

// CancelTimer implements truth.TimerStore.
func (s *Store) CancelTimer(ctx context.Context, key truth.Key, timerID string, at time.Time) error {
	var ifAt *time.Time
	if !at.IsZero() {
		v := truth.TimerTime(at)
		ifAt = &v
	}
	if _, err := s.pool.Exec(ctx, `
		DELETE FROM timers WHERE tenant = $1 AND kind = $2 AND id = $3 AND timer_id = $4
		   AND ($5::timestamptz IS NULL OR due_at = $5)`,
		key.Tenant, key.Kind, key.ID, timerID, ifAt); err != nil {
		return fmt.Errorf("postgres: cancel timer %q of %s/%s/%s: %w", timerID, key.Tenant, key.Kind, key.ID, err)
	}
	return nil
}

// Timers returns the timers of one aggregate in timer id order, without
// leasing them (for tests and operators).
func (s *Store) Timers(ctx context.Context, key truth.Key) ([]truth.DueTimer, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT timer_id, due_at, command, payload FROM timers
		 WHERE tenant = $1 AND kind = $2 AND id = $3 ORDER BY timer_id`, key.Tenant, key.Kind, key.ID)
	if err != nil {
		return nil, fmt.Errorf("postgres: timers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (truth.DueTimer, error) {
		d := truth.DueTimer{Key: key}
		err := row.Scan(&d.TimerID, &d.At, &d.Command, &d.Payload)
		d.At = d.At.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: timers: %w", err)
	}
	return out, nil
}
