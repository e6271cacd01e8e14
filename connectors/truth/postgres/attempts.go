package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.AttemptStore = (*Store)(nil)

// StartAttempt implements truth.AttemptStore: one INSERT into attempts (its
// primary key is tenant, task id and number).
func (s *Store) StartAttempt(ctx context.Context, a truth.Attempt) error {
	if err := a.Validate(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO attempts (tenant, task_id, n, order_id, system, operation, external_key, outcome, detail, started_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'started', $8, $9)`,
		a.Tenant, a.TaskID, a.N, a.OrderID, a.System, a.Operation, a.ExternalKey, a.Detail, truth.TimerTime(a.StartedAt))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s/%s #%d", truth.ErrAttemptExists, a.Tenant, a.TaskID, a.N)
	}
	if err != nil {
		return fmt.Errorf("postgres: start attempt: %w", err)
	}
	return nil
}

// EndAttempt implements truth.AttemptStore.
func (s *Store) EndAttempt(ctx context.Context, tenant, taskID string, n int, outcome truth.AttemptOutcome, detail string, at time.Time) error {
	if err := truth.ValidateEnd(outcome, at); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `
UPDATE attempts SET outcome = $4, detail = $5, ended_at = $6
WHERE tenant = $1 AND task_id = $2 AND n = $3`, tenant, taskID, n, string(outcome), detail, truth.TimerTime(at))
	if err != nil {
		return fmt.Errorf("postgres: end attempt: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: attempt %s/%s #%d", truth.ErrNotFound, tenant, taskID, n)
	}
	return nil
}

// Attempts implements truth.AttemptStore.
func (s *Store) Attempts(ctx context.Context, tenant, taskID string) ([]truth.Attempt, error) {
	rows, err := s.pool.Query(ctx, `
SELECT n, order_id, system, operation, external_key, outcome, detail, started_at, ended_at
FROM attempts WHERE tenant = $1 AND task_id = $2 ORDER BY n`, tenant, taskID)
	if err != nil {
		return nil, fmt.Errorf("postgres: attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (truth.Attempt, error) {
		a := truth.Attempt{Tenant: tenant, TaskID: taskID}
		var outcome string
		var ended *time.Time
		err := row.Scan(&a.N, &a.OrderID, &a.System, &a.Operation, &a.ExternalKey, &outcome, &a.Detail, &a.StartedAt, &ended)
		a.Outcome, a.StartedAt = truth.AttemptOutcome(outcome), a.StartedAt.UTC()
		if ended != nil {
			a.EndedAt = ended.UTC()
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: attempts: %w", err)
	}
	return out, nil
}
