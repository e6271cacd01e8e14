// Package quote is the quote grain (TMF648 vocabulary): a customer's quote
// built from catalog offerings, priced, submitted for approval, approved or
// rejected, and accepted, whereupon it names the one order it becomes.
//
// State machine:
//
//	(none) --create--> inProgress
//	inProgress --addLine|removeLine|setLineDiscount|setQuoteDiscount|clearQuoteDiscount|setCharacteristics|price--> inProgress
//	inProgress --submit (priced)--> pending
//	inProgress --submit (priced, the policy requires no approval)--> approved
//	pending --approve (not the last level required)--> pending
//	pending --approve (the last level)--> approved
//	pending --reject--> rejected
//	pending|approved|rejected --material change--> inProgress (revision N+1)
//	approved --attachDocument (revision N)--> approved
//	approved --accept--> accepted
//	inProgress|pending|approved --cancel--> cancelled
//	inProgress|pending|approved --expire (role system, from the "expire" timer)--> expired
//
// Revisions. A quote starts at revision 1. The material changes are
// addLine, removeLine, setLineDiscount, setQuoteDiscount,
// clearQuoteDiscount and setCharacteristics. In inProgress they change the
// current revision.
// After submission (pending, approved, rejected) a material change decides
// QuoteRevised{from N, to N+1, reason: the command} and then the change's
// own event: revision N is frozen into State.Revisions (an immutable copy of
// its lines, terms, discount, price with trace and hash, submission, policy
// version, required levels, approvals, rejection and document) and revision
// N+1 starts in progress with the same lines, terms and discount but no
// price, approvals or document. A change that changes nothing (the same
// discount again, clearing no discount) decides no events and starts no
// revision. Approvals, rejections, documents and the acceptance record the
// revision they apply to. approve and reject may name the revision and price
// hash the approver saw; when either is not the current one they fail with
// grains.CodeStaleRevision, before the status is checked (an approver of a
// revision superseded meanwhile learns that, not just that the quote is no
// longer pending). RevisionOf shows any revision, current or frozen.
//
// Documents and acceptance. attachDocument (role sales; the gateway sends
// it after rendering and storing the document) is allowed in approved (also
// when no approval was needed) for the current revision only (another
// revision: grains.CodeStaleRevision). The same sha256 again decides no
// events (also once accepted); another sha256 for the same revision
// replaces the document and the event names both. accept checks, in this
// order: an expired quote (grains.CodeQuoteExpired), a quote not approved
// (grains.CodeInvalidTransition), no document attached to the current
// revision (grains.CodeDocumentRequired), documentSha256 missing or not the
// attached document's (grains.CodeDocumentHashMismatch). The document rules
// apply as stated when Options.RequireDocument is set; it is off by
// default for now: then accept without documentSha256 works as before
// documents existed, while a documentSha256 that is given must still match
// (document_required without a document, document_hash_mismatch for
// another). The acceptance evidence (acceptedBy, channel, acceptedAt,
// revision, documentSha256, priceHash) is in QuoteAccepted and in
// State.Acceptance.
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
//
// Configured lines. addLine configures the line against the catalog
// (catalog.Configure: defaults filled in, every violation at once as
// grains.CodeValidation with pointers "/characteristics/<name>");
// setCharacteristics replaces a line's values the same way. price and
// submit check the whole quote (catalog.CheckConfiguration: bundles,
// requires, excludes) and fail with every violation ("/lines/i/...").
// Characteristics and parentLineId are part of the price hash.
//
// The State JSON is read outside the grain (the evidence export, the
// revisions endpoint): its field names are stable, new fields are added
// with omitempty and none is renamed.
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
	// Revisions are the frozen earlier revisions 1..Revision-1, in order
	// (see the package doc); empty while the quote is at revision 1.
	Revisions []Revision `json:"revisions,omitempty"`
	// Document is the document attached to the current revision, nil for
	// none. A new revision clears it (it stays with the frozen revision).
	Document *Document `json:"document,omitempty"`
	// Acceptance is the evidence of the acceptance, set with AcceptedBy and
	// AcceptedAt; nil before (and for quotes accepted before it existed).
	Acceptance *Acceptance `json:"acceptance,omitempty"`
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
