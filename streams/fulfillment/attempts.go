package fulfillment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// opQuery is the operation name of a query in attempt records.
const opQuery = "query"

// recordTimeout bounds one write of an attempt record, which is made even
// while the worker stops, so that an interrupted call is recorded unknown.
const recordTimeout = 5 * time.Second

// maxNumberRaces bounds how often a worker takes the next attempt number
// because another worker recorded the one it wanted.
const maxNumberRaces = 16

// recorder writes the attempt records of one task execution.
type recorder struct {
	store  truth.AttemptStore // nil: no records
	now    func() time.Time
	req    Request
	system string
	// n is the number of the last attempt recorded for the task.
	n int
	// prior are the attempts recorded before this execution began.
	prior []truth.Attempt
}

// recorder reads the task's attempts so far.
func (w *Worker) recorder(ctx context.Context, op operation, req Request) (*recorder, error) {
	r := &recorder{store: w.cfg.Records, now: w.cfg.Now, req: req, system: op.system}
	if r.system == "" {
		r.system = req.TaskType
	}
	if r.store == nil {
		return r, nil
	}
	prior, err := r.store.Attempts(ctx, req.Tenant, req.TaskID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: read: %w", errRecords, err)
	}
	r.prior = prior
	if len(prior) > 0 {
		r.n = prior[len(prior)-1].N
	}
	return r, nil
}

// resumed reports whether an earlier execution called the system for this
// task: its outcome may be there (or left started, unknown), so the worker
// queries before it calls.
func (r *recorder) resumed() bool {
	for _, a := range r.prior {
		if a.Operation != opQuery {
			return true
		}
	}
	return false
}

// record records an attempt of operation as started, runs call, and records
// its outcome. call returns a detail for the record (the reference) and the
// call's error, which record returns unchanged; an error wrapping errRecords
// means the start could not be recorded and call did not run.
func (r *recorder) record(ctx context.Context, operation string, call func() (string, error)) error {
	if operation == "" {
		operation = r.req.TaskType
	}
	if r.store == nil {
		_, err := call()
		return err
	}
	for tries := 0; ; tries++ {
		r.n++
		err := r.store.StartAttempt(ctx, truth.Attempt{Tenant: r.req.Tenant, TaskID: r.req.TaskID, N: r.n,
			OrderID: r.req.OrderID, System: r.system, Operation: operation, ExternalKey: r.req.IdempotencyKey,
			StartedAt: r.now()})
		if errors.Is(err, truth.ErrAttemptExists) && tries < maxNumberRaces {
			continue // another worker took this number: take the next
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: start #%d: %w", errRecords, r.n, err)
		}
		break
	}
	detail, err := call()
	outcome := truth.OutcomeSucceeded
	switch {
	case err == nil:
	case errors.Is(err, ErrRejected):
		outcome, detail = truth.OutcomeRejected, err.Error()
	case errors.Is(err, ErrTechnical):
		outcome, detail = truth.OutcomeTechnical, err.Error()
	default:
		outcome, detail = truth.OutcomeUnknown, err.Error()
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	// An end that cannot be written leaves the attempt started, which
	// reads as unknown: the next execution queries first. The call's own
	// outcome still counts.
	_ = r.store.EndAttempt(ectx, r.req.Tenant, r.req.TaskID, r.n, outcome, detail, r.now())
	return err
}
