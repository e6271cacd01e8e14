package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/grainline/grainline/connectors/truth"
)

// Attempt records live under one record type:
//
//	f lp(tenant) lp(task id) be64(n) -> order id, system, operation, key, outcome, detail, started, ended
//
// so that one task's attempts are one prefix scan in number order. attemptMu
// makes StartAttempt's check-then-write atomic within the process that owns
// the directory.
const tagAttempt byte = 'f'

var _ truth.AttemptStore = (*Store)(nil)

func attemptPrefix(tenant, taskID string) []byte {
	b := make([]byte, 0, 3+len(tenant)+len(taskID))
	b = append(b, tagAttempt)
	b = appendLP(b, tenant)
	return appendLP(b, taskID)
}

func attemptKey(tenant, taskID string, n int) []byte {
	return binary.BigEndian.AppendUint64(attemptPrefix(tenant, taskID), uint64(n))
}

func encodeAttempt(a *truth.Attempt) []byte {
	var e enc
	e.str(a.OrderID)
	e.str(a.System)
	e.str(a.Operation)
	e.str(a.ExternalKey)
	e.str(string(a.Outcome))
	e.str(a.Detail)
	e.time(a.StartedAt)
	e.time(a.EndedAt)
	return e.b
}

func decodeAttempt(v []byte, a *truth.Attempt) error {
	d := dec{b: v}
	a.OrderID, a.System, a.Operation, a.ExternalKey = d.str(), d.str(), d.str(), d.str()
	a.Outcome, a.Detail = truth.AttemptOutcome(d.str()), d.str()
	a.StartedAt, a.EndedAt = d.time(), d.time()
	return d.err
}

// StartAttempt implements truth.AttemptStore.
func (s *Store) StartAttempt(ctx context.Context, a truth.Attempt) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.attemptMu.Lock()
	defer s.attemptMu.Unlock()
	k := attemptKey(a.Tenant, a.TaskID, a.N)
	exists, err := s.has(k)
	if err != nil {
		return fmt.Errorf("embedded: start attempt: %w", err)
	}
	if exists {
		return fmt.Errorf("%w: %s/%s #%d", truth.ErrAttemptExists, a.Tenant, a.TaskID, a.N)
	}
	a.Outcome, a.StartedAt, a.EndedAt = truth.OutcomeStarted, truth.TimerTime(a.StartedAt), time.Time{}
	if err := s.db.Set(k, encodeAttempt(&a), pebble.Sync); err != nil {
		return fmt.Errorf("embedded: start attempt: %w", err)
	}
	return nil
}

// EndAttempt implements truth.AttemptStore.
func (s *Store) EndAttempt(ctx context.Context, tenant, taskID string, n int, outcome truth.AttemptOutcome, detail string, at time.Time) error {
	if err := truth.ValidateEnd(outcome, at); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.attemptMu.Lock()
	defer s.attemptMu.Unlock()
	k := attemptKey(tenant, taskID, n)
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: attempt %s/%s #%d", truth.ErrNotFound, tenant, taskID, n)
	}
	if err != nil {
		return fmt.Errorf("embedded: end attempt: %w", err)
	}
	var a truth.Attempt
	err = decodeAttempt(v, &a)
	closer.Close()
	if err != nil {
		return fmt.Errorf("embedded: end attempt: %w", err)
	}
	a.Outcome, a.Detail, a.EndedAt = outcome, detail, truth.TimerTime(at)
	if err := s.db.Set(k, encodeAttempt(&a), pebble.Sync); err != nil {
		return fmt.Errorf("embedded: end attempt: %w", err)
	}
	return nil
}

// Attempts implements truth.AttemptStore.
func (s *Store) Attempts(ctx context.Context, tenant, taskID string) ([]truth.Attempt, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := attemptPrefix(tenant, taskID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("embedded: attempts: %w", err)
	}
	defer it.Close()
	out := []truth.Attempt{}
	for ok := it.First(); ok; ok = it.Next() {
		key := it.Key()
		if len(key) != len(p)+8 || !bytes.HasPrefix(key, p) {
			return nil, fmt.Errorf("%w: attempt key %x", errCorrupt, key)
		}
		a := truth.Attempt{Tenant: tenant, TaskID: taskID, N: int(binary.BigEndian.Uint64(key[len(p):]))}
		if err := decodeAttempt(it.Value(), &a); err != nil {
			return nil, fmt.Errorf("embedded: attempt: %w", err)
		}
		out = append(out, a)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: attempts: %w", err)
	}
	return out, nil
}
