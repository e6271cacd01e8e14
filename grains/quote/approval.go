package quote

import (
	"errors"
	"fmt"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/shopspring/decimal"
)

// MaxTermMonths bounds a quote's contract term.
const MaxTermMonths = 600

// Approval is one recorded approval decision: who approved which level, of
// which revision at which price, under which policy version.
type Approval struct {
	Level         int       `json:"level"`
	ApprovedBy    string    `json:"approvedBy"`
	ApprovedAt    time.Time `json:"approvedAt"`
	PolicyVersion int       `json:"policyVersion"`
	Revision      int       `json:"revision"`
	PriceHash     string    `json:"priceHash"`
}

// Facts returns what the approval policy knows about s, which must be
// priced: the deepest discount of any line and the quote discount (each the
// larger of its one-time and monthly share, in percent, rounded to 4
// places), the net totals, the term and the customer segment.
func Facts(s State) (approval.Facts, error) {
	if s.Price == nil {
		return approval.Facts{}, fmt.Errorf("quote %s is not priced", s.ID)
	}
	f := approval.Facts{TermMonths: s.TermMonths, CustomerSegment: s.CustomerSegment}
	var err error
	if f.OneTimeTotal, err = amount(s.Price.OneTimeTotal); err != nil {
		return f, err
	}
	if f.MonthlyTotal, err = amount(s.Price.MonthlyTotal); err != nil {
		return f, err
	}
	for _, l := range s.Lines {
		q := decimal.NewFromInt(int64(l.Quantity))
		for _, c := range [][2]string{{l.UnitOneTime, l.OneTimeTotal}, {l.UnitMonthly, l.MonthlyTotal}} {
			unit, err := amount(c[0])
			if err != nil {
				return f, err
			}
			net, err := amount(c[1])
			if err != nil {
				return f, err
			}
			f.MaxLineDiscountPercent = decimal.Max(f.MaxLineDiscountPercent, percentOff(unit.Mul(q), unit.Mul(q).Sub(net)))
		}
	}
	for _, c := range [][2]string{{s.Price.SubtotalOneTime, s.Price.DiscountOneTime}, {s.Price.SubtotalMonthly, s.Price.DiscountMonthly}} {
		sub, err := amount(c[0])
		if err != nil {
			return f, err
		}
		off, err := amount(c[1])
		if err != nil {
			return f, err
		}
		f.QuoteDiscountPercent = decimal.Max(f.QuoteDiscountPercent, percentOff(sub, off))
	}
	return f, nil
}

// amount parses a recorded amount; "" (a price recorded before the field
// existed) is zero.
func amount(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, fmt.Errorf("amount %q: %w", s, err)
	}
	return d, nil
}

var hundred = decimal.NewFromInt(100)

// percentOff is off as a percent of gross, 0 when gross is not positive.
func percentOff(gross, off decimal.Decimal) decimal.Decimal {
	if !gross.IsPositive() || !off.IsPositive() {
		return decimal.Zero
	}
	return off.Mul(hundred).DivRound(gross, 4)
}

// decideSubmit evaluates the policy in force on the priced quote. A tenant
// without a policy (env.Policy nil) gets the behaviour from before policies
// existed: one approval at level 1, recorded as policy version 0.
func decideSubmit(s State, env grains.Env, now time.Time) ([]grains.Event, error) {
	f, err := Facts(s)
	if err != nil {
		return nil, grains.Errorf(grains.CodeInternal, "submit: %v", err)
	}
	dec := approval.Decision{Level: 1}
	if env.Policy != nil {
		if dec, err = env.Policy.Evaluate(f); err != nil {
			if errors.Is(err, approval.ErrEvaluation) {
				return nil, grains.Errorf(grains.CodeValidation, "submit: the approval policy of tenant %s cannot be applied: %v", env.Tenant, err)
			}
			return nil, withCommand(CmdSubmit, err)
		}
	}
	facts := f.Record()
	status := StatusPending
	if dec.Level == 0 {
		status = StatusApproved
	}
	return []grains.Event{Submitted{QuoteID: s.ID, Status: status, PriceHash: s.Price.Hash, Revision: s.revision(),
		PolicyVersion: dec.PolicyVersion, RequiredLevel: dec.Level, Rules: dec.Matched, Facts: &facts,
		SubmittedBy: env.Actor, SubmittedAt: now}}, nil
}

// nextLevel is the level the next approval decides.
func (s State) nextLevel() int { return len(s.Approvals) + 1 }

// requireAuthority refuses an approver whose roles do not reach level.
func requireAuthority(s State, command string, level int, env grains.Env) error {
	if have := approval.Authority(env.Roles); have < level {
		return grains.Errorf(grains.CodeForbidden,
			"%s: quote %s awaits approval at level %d of %d, which requires role approver:%d; the caller's authority is level %d",
			command, s.ID, level, s.RequiredLevel, level, have)
	}
	return nil
}

func decideApprove(s State, c Approve, env grains.Env, now time.Time) ([]grains.Event, error) {
	next := s.nextLevel()
	switch {
	case c.Level != 0 && c.Level < next:
		return nil, grains.InvalidTransition(grains.KindQuote, s.ID, string(s.Status), CmdApprove, fmt.Sprintf("level %d is already approved", c.Level))
	case c.Level > s.RequiredLevel:
		return nil, violation(CmdApprove, "/level", "range", fmt.Sprintf("quote %s requires approval up to level %d, not %d", s.ID, s.RequiredLevel, c.Level))
	case c.Level > next:
		return nil, grains.InvalidTransition(grains.KindQuote, s.ID, string(s.Status), CmdApprove, fmt.Sprintf("level %d must be approved before level %d", next, c.Level))
	}
	if err := requireAuthority(s, CmdApprove, next, env); err != nil {
		return nil, err
	}
	status := StatusPending
	if next >= s.RequiredLevel {
		status = StatusApproved
	}
	return []grains.Event{Approved{QuoteID: s.ID, Status: status, Level: next, PolicyVersion: s.PolicyVersion,
		Revision: s.revision(), PriceHash: s.Price.Hash, ApprovedBy: env.Actor, ApprovedAt: now}}, nil
}

func decideReject(s State, c Reject, env grains.Env, now time.Time) ([]grains.Event, error) {
	next := s.nextLevel()
	if err := requireAuthority(s, CmdReject, next, env); err != nil {
		return nil, err
	}
	return []grains.Event{Rejected{QuoteID: s.ID, Status: StatusRejected, Reason: c.Reason, Level: next,
		PolicyVersion: s.PolicyVersion, Revision: s.revision(), PriceHash: s.Price.Hash,
		RejectedBy: env.Actor, RejectedAt: now}}, nil
}
