// Package quote is the quote grain (TMF648 vocabulary): a customer's quote
// built from catalog offerings, priced, submitted for approval, approved or
// rejected, and accepted, whereupon it names the one order it becomes.
//
// State machine:
//
//	(none) --create--> inProgress
//	inProgress --addLine|removeLine|setLineDiscount|setQuoteDiscount|clearQuoteDiscount|price--> inProgress
//	inProgress --submit (priced)--> pending
//	inProgress --submit (priced, the policy requires no approval)--> approved
//	pending --approve (not the last level required)--> pending
//	pending --approve (the last level)--> approved
//	pending --reject--> rejected
//	approved --accept--> accepted
//	inProgress|pending|approved --cancel--> cancelled
//	inProgress|pending|approved --expire (role system, from the "expire" timer)--> expired
//
// Every quote has a validUntil (create's validUntil or validForDays, by
// default DefaultValidForDays after creation). QuoteCreated sets the durable
// timer "expire" at it, which sends expire. TMF648 has no expiry state; we
// add the status "expired" to its vocabulary rather than reuse "cancelled",
// so that a lapsed offer is told apart from a withdrawn one. The timer can
// fire late, so Decide also compares env.Now with validUntil: any command
// but expire on a not-yet-decided quote past its validUntil fails with
// grains.CodeQuoteExpired, and so does accept on an expired quote (other
// commands on it are invalid transitions). expire on an accepted, rejected, cancelled or
// expired quote decides no events, so a late or repeated timer is harmless.
//
// A line or discount change clears the price, so a submitted quote always carries the
// price of exactly its lines, and the approval records that price's hash.
package quote

import (
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/pricing"
)

// Status is the quote's lifecycle state.
type Status string

// Quote statuses.
const (
	StatusInProgress Status = "inProgress"
	StatusPending    Status = "pending"
	StatusApproved   Status = "approved"
	StatusAccepted   Status = "accepted"
	StatusRejected   Status = "rejected"
	StatusCancelled  Status = "cancelled"
	// StatusExpired is not in TMF648: a quote whose validUntil passed
	// before it was accepted, rejected or cancelled.
	StatusExpired Status = "expired"
)

// Roles the quote grain checks.
const (
	RoleSales    = "sales"
	RoleApprover = "approver"
	// RoleSystem is the runtime's own role, e.g. the timer that sends expire.
	RoleSystem = "system"
)

// MaxQuantity bounds the quantity of one line.
const MaxQuantity = 100000

// PriceSummary is the result of pricing the quote's current lines: totals
// net of every discount, the subtotals and quote discount they come from,
// and the step-by-step trace and hash of the pricing result.
type PriceSummary struct {
	SubtotalOneTime string         `json:"subtotalOneTime,omitempty"`
	SubtotalMonthly string         `json:"subtotalMonthly,omitempty"`
	DiscountOneTime string         `json:"discountOneTime,omitempty"`
	DiscountMonthly string         `json:"discountMonthly,omitempty"`
	OneTimeTotal    string         `json:"oneTimeTotal"`
	MonthlyTotal    string         `json:"monthlyTotal"`
	Algorithm       string         `json:"algorithm,omitempty"`
	Trace           []pricing.Step `json:"trace,omitempty"`
	Hash            string         `json:"hash"`
	PricedAt        time.Time      `json:"pricedAt"`
}

// State is the quote's snapshot. The zero State is a quote that does not
// exist yet.
type State struct {
	ID             string          `json:"id"`
	Tenant         grains.TenantID `json:"tenant"`
	Status         Status          `json:"status"`
	CustomerID     string          `json:"customerId"`
	CustomerName   string          `json:"customerName"`
	Currency       string          `json:"currency"`
	CatalogVersion int             `json:"catalogVersion"`
	// Revision is the quote's revision number, 1 from creation.
	Revision        int           `json:"revision"`
	TermMonths      int           `json:"termMonths,omitempty"`
	CustomerSegment string        `json:"customerSegment,omitempty"`
	Lines           []grains.Line `json:"lines"`
	// LineSeq is the number of lines ever added; line ids are never reused.
	LineSeq int `json:"lineSeq"`
	// Terms holds, by line id, the list prices, tiers and discount of each
	// line (see LineTerms).
	Terms map[string]LineTerms `json:"terms,omitempty"`
	// Discount is the quote-level discount, nil for none.
	Discount          *Discount     `json:"discount,omitempty"`
	Price             *PriceSummary `json:"price"` // nil until priced, and again after a line change
	SubmittedBy       string        `json:"submittedBy"`
	SubmittedAt       *time.Time    `json:"submittedAt"`
	ApprovedBy        string        `json:"approvedBy"`
	ApprovedAt        *time.Time    `json:"approvedAt"`
	ApprovedPriceHash string        `json:"approvedPriceHash"`
	// PolicyVersion and RequiredLevel are pinned at submission: the
	// approval policy version evaluated (0: none) and the levels 1..N it
	// requires; ApprovalRules are the rules that matched. Approvals are the
	// approvals recorded since, in level order.
	PolicyVersion  int              `json:"policyVersion"`
	RequiredLevel  int              `json:"requiredLevel"`
	ApprovalRules  []approval.Match `json:"approvalRules,omitempty"`
	Approvals      []Approval       `json:"approvals,omitempty"`
	RejectedBy     string           `json:"rejectedBy"`
	RejectedAt     *time.Time       `json:"rejectedAt"`
	RejectedReason string           `json:"rejectedReason"`
	AcceptedBy     string           `json:"acceptedBy"`
	AcceptedAt     *time.Time       `json:"acceptedAt"`
	OrderID        string           `json:"orderId"` // set at acceptance: order.IDForQuote(id)
	CancelledBy    string           `json:"cancelledBy"`
	CancelledAt    *time.Time       `json:"cancelledAt"`
	CancelReason   string           `json:"cancelReason"`
	// ValidUntil is when the quote expires; zero for quotes created before
	// expiry existed, which never expire.
	ValidUntil time.Time  `json:"validUntil,omitzero"`
	ExpiredAt  *time.Time `json:"expiredAt,omitempty"`
	CreatedBy  string     `json:"createdBy"`
	CreatedAt  time.Time  `json:"createdAt"`
}

// revision is s.Revision, 1 for snapshots from before revisions.
func (s State) revision() int { return max(s.Revision, 1) }

// pastValidity reports whether now is at or after the quote's validUntil.
// Quotes without one never expire.
func (s State) pastValidity(now time.Time) bool {
	return !s.ValidUntil.IsZero() && !now.Before(s.ValidUntil)
}

// Exists reports whether s holds a created quote.
func Exists(s State) bool { return s.ID != "" }

func (s State) line(id string) int {
	for i, l := range s.Lines {
		if l.LineID == id {
			return i
		}
	}
	return -1
}
