package plan

import (
	"fmt"
	"time"
)

// DefaultLeadTime is the lead time of a plan that declares none.
const DefaultLeadTime = 7 * 24 * time.Hour

// Commitment is when an order is committed to complete and when that date
// becomes at risk.
type Commitment struct {
	// CommittedDate is the date the order is committed to complete by.
	CommittedDate time.Time
	// JeopardyAt is when the committed date becomes at risk: CommittedDate
	// minus the jeopardy margin, clamped to [start, CommittedDate].
	JeopardyAt time.Time
}

// LeadTime is the plan's lead time (DefaultLeadTime when it declares none).
func (p Plan) LeadTime() time.Duration {
	if p.LeadTimeSeconds > 0 {
		return time.Duration(p.LeadTimeSeconds) * time.Second
	}
	return DefaultLeadTime
}

// Commit computes an order's commitment, deterministically from its inputs:
//
//   - the committed date is requested when set, else acceptedAt plus the
//     plan's lead time (start when acceptedAt is zero);
//   - the margin is margin when positive, else the plan's
//     JeopardyMarginSeconds when set, else a quarter of the window from
//     start to the committed date;
//   - JeopardyAt is the committed date minus the margin, but not before
//     start (an order whose window is shorter than its margin is at risk at
//     once) and not after the committed date.
//
// Times are kept to the microsecond, as durable timers are.
func (p Plan) Commit(start, acceptedAt, requested time.Time, margin time.Duration) Commitment {
	start = start.UTC().Truncate(time.Microsecond)
	committed := requested
	if committed.IsZero() {
		base := acceptedAt
		if base.IsZero() {
			base = start
		}
		committed = base.Add(p.LeadTime())
	}
	committed = committed.UTC().Truncate(time.Microsecond)
	if margin <= 0 && p.JeopardyMarginSeconds > 0 {
		margin = time.Duration(p.JeopardyMarginSeconds) * time.Second
	}
	if margin <= 0 {
		margin = committed.Sub(start) / 4
	}
	at := committed.Add(-margin)
	if at.Before(start) {
		at = start
	}
	if at.After(committed) {
		at = committed
	}
	return Commitment{CommittedDate: committed, JeopardyAt: at.Truncate(time.Microsecond)}
}

func (p Plan) validateCommitment() error {
	switch {
	case p.LeadTimeSeconds < 0:
		return fmt.Errorf("%w: version %d has a negative leadTimeSeconds", ErrInvalidPlan, p.Version)
	case p.JeopardyMarginSeconds < 0:
		return fmt.Errorf("%w: version %d has a negative jeopardyMarginSeconds", ErrInvalidPlan, p.Version)
	case p.JeopardyMarginSeconds > 0 && time.Duration(p.JeopardyMarginSeconds)*time.Second >= p.LeadTime():
		return fmt.Errorf("%w: version %d: jeopardyMarginSeconds %d is not shorter than the lead time %s",
			ErrInvalidPlan, p.Version, p.JeopardyMarginSeconds, p.LeadTime())
	}
	return nil
}
