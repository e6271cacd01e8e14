package truth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrAttemptExists: an attempt with that tenant, task id and number is
// already recorded (another worker started it first).
var ErrAttemptExists = errors.New("truth: attempt already recorded")

// AttemptOutcome is how one call towards an external system ended.
type AttemptOutcome string

// Attempt outcomes. An attempt is recorded as started before the call and
// ended with one of the other outcomes after it; one left started means the
// caller stopped mid-call, which is as good as unknown.
const (
	OutcomeStarted   AttemptOutcome = "started"
	OutcomeSucceeded AttemptOutcome = "succeeded"
	OutcomeRejected  AttemptOutcome = "rejected"
	OutcomeTechnical AttemptOutcome = "technical"
	OutcomeUnknown   AttemptOutcome = "unknown"
)

// Valid reports whether o is one of the outcomes above.
func (o AttemptOutcome) Valid() bool {
	switch o {
	case OutcomeStarted, OutcomeSucceeded, OutcomeRejected, OutcomeTechnical, OutcomeUnknown:
		return true
	}
	return false
}

// Attempt is the durable record of one call the fulfillment worker made
// towards an external system on behalf of a task.
type Attempt struct {
	Tenant string
	TaskID string
	// N numbers the task's attempts from 1 without gaps.
	N       int
	OrderID string
	// System is the external system ("inventory", "billing", ...).
	System string
	// Operation is what was asked of it ("reserve", "query", ...).
	Operation string
	// ExternalKey is the idempotency key sent to the system.
	ExternalKey string
	Outcome     AttemptOutcome
	// Detail is the system's reference or the error, for people.
	Detail    string
	StartedAt time.Time
	// EndedAt is zero while the attempt is started.
	EndedAt time.Time
}

// AttemptStore keeps attempt records, implemented by both adapters. All
// methods are safe for concurrent use; each write is durable when it
// returns.
type AttemptStore interface {
	// StartAttempt records a.Outcome as started (whatever a says). It
	// fails with ErrAttemptExists when (Tenant, TaskID, N) is recorded, and
	// with ErrInvalidAttempt when a lacks a field (see Attempt.Validate).
	StartAttempt(ctx context.Context, a Attempt) error
	// EndAttempt records the outcome of a started attempt. It fails with
	// ErrNotFound for an attempt never started and ErrInvalidAttempt for an
	// outcome that is not an end (started or unknown to Valid). Ending an
	// attempt again replaces its outcome.
	EndAttempt(ctx context.Context, tenant, taskID string, n int, outcome AttemptOutcome, detail string, at time.Time) error
	// Attempts returns the task's attempts in N order (none: empty, no error).
	Attempts(ctx context.Context, tenant, taskID string) ([]Attempt, error)
}

// ErrInvalidAttempt: an attempt record breaks the rules of AttemptStore.
var ErrInvalidAttempt = errors.New("truth: invalid attempt")

// Validate checks what StartAttempt requires: tenant, task id, a positive N,
// system, operation, external key and a start time.
func (a Attempt) Validate() error {
	switch {
	case a.Tenant == "" || a.TaskID == "":
		return fmt.Errorf("%w: tenant or task id is empty", ErrInvalidAttempt)
	case a.N < 1:
		return fmt.Errorf("%w: attempt number %d is not positive", ErrInvalidAttempt, a.N)
	case a.System == "" || a.Operation == "" || a.ExternalKey == "":
		return fmt.Errorf("%w: system, operation or external key is empty", ErrInvalidAttempt)
	case a.StartedAt.IsZero():
		return fmt.Errorf("%w: no start time", ErrInvalidAttempt)
	}
	return nil
}

// ValidateEnd checks an outcome given to EndAttempt.
func ValidateEnd(outcome AttemptOutcome, at time.Time) error {
	if !outcome.Valid() || outcome == OutcomeStarted {
		return fmt.Errorf("%w: %q is not an end outcome", ErrInvalidAttempt, outcome)
	}
	if at.IsZero() {
		return fmt.Errorf("%w: no end time", ErrInvalidAttempt)
	}
	return nil
}
