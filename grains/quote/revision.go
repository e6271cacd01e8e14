package quote

import (
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
)

// Revision is one revision of a quote: its lines, terms, discount and price,
// and everything decided about exactly that content (submission, approval
// policy and levels, approvals, rejection, document). State.Revisions holds
// the frozen earlier revisions, each an immutable copy taken when a material
// change superseded it; RevisionOf shows the current one in the same form.
type Revision struct {
	Number int    `json:"number"`
	Status Status `json:"status"` // the quote's status while this was the current revision
	// Current is true for the quote's current revision, false for a frozen one.
	Current bool `json:"current"`

	Lines    []grains.Line        `json:"lines"`
	Terms    map[string]LineTerms `json:"terms,omitempty"`
	Discount *Discount            `json:"discount,omitempty"`
	Price    *PriceSummary        `json:"price"`

	SubmittedBy       string           `json:"submittedBy,omitempty"`
	SubmittedAt       *time.Time       `json:"submittedAt,omitempty"`
	PolicyVersion     int              `json:"policyVersion"`
	RequiredLevel     int              `json:"requiredLevel"`
	ApprovalRules     []approval.Match `json:"approvalRules,omitempty"`
	Approvals         []Approval       `json:"approvals,omitempty"`
	ApprovedBy        string           `json:"approvedBy,omitempty"`
	ApprovedAt        *time.Time       `json:"approvedAt,omitempty"`
	ApprovedPriceHash string           `json:"approvedPriceHash,omitempty"`
	RejectedBy        string           `json:"rejectedBy,omitempty"`
	RejectedAt        *time.Time       `json:"rejectedAt,omitempty"`
	RejectedReason    string           `json:"rejectedReason,omitempty"`
	Document          *Document        `json:"document,omitempty"`

	// SupersededBy is the command whose change ended this revision,
	// SupersededAt when; both empty for the current revision.
	SupersededBy string     `json:"supersededBy,omitempty"`
	SupersededAt *time.Time `json:"supersededAt,omitempty"`
}

// materialChanges are the commands that change what a revision is: after
// submission (pending, approved, rejected) each starts a new revision.
var materialChanges = []string{CmdAddLine, CmdRemoveLine, CmdSetLineDiscount, CmdSetQuoteDiscount, CmdClearQuoteDiscount, CmdSetCharacteristics}

// revisedIn are the statuses in which a material change starts a new
// revision. In inProgress the change stays in the current revision.
var revisedIn = []Status{StatusPending, StatusApproved, StatusRejected}

// snapshot is the current revision of s as a Revision: a deep copy that
// shares nothing with s.
func (s State) snapshot() Revision {
	r := Revision{
		Number: s.revision(), Status: s.Status, Current: true,
		Lines: grains.CloneLines(s.Lines), Discount: cloneDiscount(s.Discount), Price: clonePrice(s.Price),
		SubmittedBy: s.SubmittedBy, SubmittedAt: cloneTime(s.SubmittedAt),
		PolicyVersion: s.PolicyVersion, RequiredLevel: s.RequiredLevel,
		ApprovalRules: append([]approval.Match(nil), s.ApprovalRules...),
		Approvals:     append([]Approval(nil), s.Approvals...),
		ApprovedBy:    s.ApprovedBy, ApprovedAt: cloneTime(s.ApprovedAt), ApprovedPriceHash: s.ApprovedPriceHash,
		RejectedBy: s.RejectedBy, RejectedAt: cloneTime(s.RejectedAt), RejectedReason: s.RejectedReason,
	}
	if r.Lines == nil {
		r.Lines = []grains.Line{}
	}
	if len(s.Terms) > 0 {
		r.Terms = make(map[string]LineTerms, len(s.Terms))
		for k, v := range s.Terms {
			v.Tiers = append(v.Tiers[:0:0], v.Tiers...)
			v.Discount = cloneDiscount(v.Discount)
			r.Terms[k] = v
		}
	}
	if s.Document != nil {
		d := *s.Document
		r.Document = &d
	}
	return r
}

// RevisionOf returns revision n of s: the current revision (Current set)
// or a frozen earlier one. ok is false when s has no revision n.
func RevisionOf(s State, n int) (r Revision, ok bool) {
	if !Exists(s) || n < 1 {
		return Revision{}, false
	}
	if n == s.revision() {
		return s.snapshot(), true
	}
	for _, r := range s.Revisions {
		if r.Number == n {
			return r, true
		}
	}
	return Revision{}, false
}

// revise freezes the current revision into s.Revisions and starts the next
// one in progress: same lines, terms and discount, but no price,
// submission, approvals, rejection or document (they were the old
// revision's).
func (s State) revise(e Revised) State {
	frozen := s.snapshot()
	frozen.Current = false
	frozen.SupersededBy, frozen.SupersededAt = e.Reason, timePtr(e.RevisedAt)
	s.Revisions = append(append([]Revision(nil), s.Revisions...), frozen)
	s.Revision = e.To
	s.Status = e.Status
	s.Price = nil
	s.SubmittedBy, s.SubmittedAt = "", nil
	s.PolicyVersion, s.RequiredLevel, s.ApprovalRules, s.Approvals = 0, 0, nil, nil
	s.ApprovedBy, s.ApprovedAt, s.ApprovedPriceHash = "", nil, ""
	s.RejectedBy, s.RejectedAt, s.RejectedReason = "", nil, ""
	s.Document = nil
	return s
}

// revised prepends a Revised event to the events of a material change when
// s is past submission: the change then applies to a new revision in
// progress. evs must be the change's events as decided against s; their
// status is set to inProgress, the status after the revision.
func revised(s State, command string, env grains.Env, evs []grains.Event) []grains.Event {
	if len(evs) == 0 || !statusIn(s.Status, revisedIn) {
		return evs
	}
	from := s.revision()
	rev := Revised{QuoteID: s.ID, Status: StatusInProgress, From: from, To: from + 1, Reason: command,
		FromStatus: s.Status, RevisedBy: env.Actor, RevisedAt: env.Now.UTC()}
	if s.Price != nil {
		rev.PriceHash = s.Price.Hash
	}
	out := make([]grains.Event, 0, len(evs)+1)
	out = append(out, rev)
	for _, ev := range evs {
		out = append(out, withStatus(ev, StatusInProgress))
	}
	return out
}

// withStatus sets the status of a material change's event.
func withStatus(ev grains.Event, st Status) grains.Event {
	switch e := ev.(type) {
	case LineAdded:
		e.Status = st
		return e
	case LineRemoved:
		e.Status = st
		return e
	case LineDiscountSet:
		e.Status = st
		return e
	case DiscountSet:
		e.Status = st
		return e
	case DiscountCleared:
		e.Status = st
		return e
	case CharacteristicsSet:
		e.Status = st
		return e
	}
	return ev
}

func statusIn(st Status, list []Status) bool {
	for _, a := range list {
		if a == st {
			return true
		}
	}
	return false
}

func cloneDiscount(d *Discount) *Discount {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

func clonePrice(p *PriceSummary) *PriceSummary {
	if p == nil {
		return nil
	}
	c := *p
	c.Trace = append(c.Trace[:0:0], c.Trace...)
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
