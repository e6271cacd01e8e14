package quote

import (
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/pricing"
)

// Event wire names.
const (
	EvCreated     = "QuoteCreated"
	EvLineAdded   = "QuoteLineAdded"
	EvLineRemoved = "QuoteLineRemoved"
	EvPriced      = "QuotePriced"
	EvSubmitted   = "QuoteSubmitted"
	EvApproved    = "QuoteApproved"
	EvRejected    = "QuoteRejected"
	EvAccepted    = "QuoteAccepted"
	EvCancelled   = "QuoteCancelled"

	EvLineDiscountSet = "QuoteLineDiscountSet"
	EvDiscountSet     = "QuoteDiscountSet"
	EvDiscountCleared = "QuoteDiscountCleared"

	EvExpired = "QuoteExpired"

	EvRevised          = "QuoteRevised"
	EvDocumentAttached = "QuoteDocumentAttached"

	EvCharacteristicsSet = "QuoteLineCharacteristicsSet"
)

// Every quote event carries quoteId. All but QuoteAccepted also carry the
// quote's status after the event; QuoteAccepted means "accepted".

// Created: a quote was opened.
type Created struct {
	QuoteID         string          `json:"quoteId"`
	Status          Status          `json:"status"`
	Tenant          grains.TenantID `json:"tenant"`
	CustomerID      string          `json:"customerId"`
	CustomerName    string          `json:"customerName"`
	Currency        string          `json:"currency"`
	CatalogVersion  int             `json:"catalogVersion"`
	TermMonths      int             `json:"termMonths,omitempty"`
	CustomerSegment string          `json:"customerSegment,omitempty"`
	CreatedBy       string          `json:"createdBy"`
	CreatedAt       time.Time       `json:"createdAt"`
	// ValidUntil is when the quote expires; QuoteCreated sets the "expire"
	// timer at it. Zero in events from before expiry: such quotes never
	// expire.
	ValidUntil time.Time `json:"validUntil,omitzero"`
}

// Timers implements grains.TimerEffects: the "expire" timer at ValidUntil.
func (e Created) Timers() (set []grains.Timer, cancel []string) {
	if e.ValidUntil.IsZero() {
		return nil, nil
	}
	return []grains.Timer{{ID: TimerExpire, At: e.ValidUntil, Command: CmdExpire}}, nil
}

// LineAdded: a line was added, at the catalog's unit prices for its
// quantity (the tier it falls in); the price is cleared. ListOneTime,
// ListMonthly and Tiers are the catalog price the line was added from, kept
// so that pricing is reproducible without the catalog; events written
// before tiers existed lack them and price at the line's unit prices.
type LineAdded struct {
	QuoteID        string         `json:"quoteId"`
	Status         Status         `json:"status"`
	CatalogVersion int            `json:"catalogVersion"`
	Line           grains.Line    `json:"line"`
	Tier           int            `json:"tier,omitempty"`
	ListOneTime    string         `json:"listOneTime,omitempty"`
	ListMonthly    string         `json:"listMonthly,omitempty"`
	Tiers          []catalog.Tier `json:"tiers,omitempty"`
}

// LineDiscountSet: a line's discount was set; the price is cleared.
type LineDiscountSet struct {
	QuoteID  string   `json:"quoteId"`
	Status   Status   `json:"status"`
	LineID   string   `json:"lineId"`
	Discount Discount `json:"discount"`
}

// DiscountSet: the quote-level discount was set; the price is cleared.
type DiscountSet struct {
	QuoteID  string   `json:"quoteId"`
	Status   Status   `json:"status"`
	Discount Discount `json:"discount"`
}

// DiscountCleared: the quote-level discount was removed; the price is
// cleared.
type DiscountCleared struct {
	QuoteID string `json:"quoteId"`
	Status  Status `json:"status"`
}

// LineRemoved: a line was removed; the price is cleared.
type LineRemoved struct {
	QuoteID string `json:"quoteId"`
	Status  Status `json:"status"`
	LineID  string `json:"lineId"`
}

// Priced: the lines were priced; Lines are the priced lines in order, each
// at the unit prices of its tier and with totals net of its discount.
// OneTimeTotal and MonthlyTotal are net of the quote discount too; the
// subtotals are the sums of the lines. Trace and Hash are the pricing
// result's (package pricing, algorithm Algorithm).
type Priced struct {
	QuoteID         string         `json:"quoteId"`
	Status          Status         `json:"status"`
	Currency        string         `json:"currency"`
	Lines           []grains.Line  `json:"lines"`
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

// Submitted: the priced quote was submitted, and the approval policy in
// force (PolicyVersion; 0 when the tenant had none) was evaluated on the
// Facts of its price: it requires approvals at levels 1..RequiredLevel
// because of Rules. With RequiredLevel 0 the quote needs no approval and
// Status is approved; otherwise it is pending. The policy version and levels
// stay pinned to the submission whatever policy is published later. Events
// from before policies lack these fields and require one approval.
type Submitted struct {
	QuoteID       string                `json:"quoteId"`
	Status        Status                `json:"status"`
	PriceHash     string                `json:"priceHash"`
	Revision      int                   `json:"revision,omitempty"`
	PolicyVersion int                   `json:"policyVersion,omitempty"`
	RequiredLevel int                   `json:"requiredLevel,omitempty"`
	Rules         []approval.Match      `json:"rules,omitempty"`
	Facts         *approval.FactsRecord `json:"facts,omitempty"`
	SubmittedBy   string                `json:"submittedBy"`
	SubmittedAt   time.Time             `json:"submittedAt"`
}

// Approved: an approver approved Level of the quote's Revision at the price
// with PriceHash, under the policy version pinned at submission. Status is
// approved when Level was the last level required, else still pending.
type Approved struct {
	QuoteID       string    `json:"quoteId"`
	Status        Status    `json:"status"`
	Level         int       `json:"level,omitempty"`
	PolicyVersion int       `json:"policyVersion,omitempty"`
	Revision      int       `json:"revision,omitempty"`
	PriceHash     string    `json:"priceHash"`
	ApprovedBy    string    `json:"approvedBy"`
	ApprovedAt    time.Time `json:"approvedAt"`
}

// Rejected: an approver rejected the quote at Level, giving Reason.
type Rejected struct {
	QuoteID       string    `json:"quoteId"`
	Status        Status    `json:"status"`
	Reason        string    `json:"reason"`
	Level         int       `json:"level,omitempty"`
	PolicyVersion int       `json:"policyVersion,omitempty"`
	Revision      int       `json:"revision,omitempty"`
	PriceHash     string    `json:"priceHash,omitempty"`
	RejectedBy    string    `json:"rejectedBy"`
	RejectedAt    time.Time `json:"rejectedAt"`
}

// Accepted: the customer accepted the quote. Its payload is exactly the
// payload of the order grain's create command: order.Create(accepted) is the
// command that creates the one order this quote becomes. Besides the lines
// and totals it carries the acceptance evidence: acceptedBy, channel,
// acceptedAt, revision, documentSha256 (when a document was accepted) and
// priceHash.
type Accepted order.Create

// Revised: a material change (Reason, the command's name) after submission
// froze revision From, whose status was FromStatus and price hash PriceHash,
// and started revision To in progress, without price, approvals or
// document. The change's own event follows in the same commit.
type Revised struct {
	QuoteID    string    `json:"quoteId"`
	Status     Status    `json:"status"`
	From       int       `json:"from"`
	To         int       `json:"to"`
	Reason     string    `json:"reason"`
	FromStatus Status    `json:"fromStatus"`
	PriceHash  string    `json:"priceHash,omitempty"`
	RevisedBy  string    `json:"revisedBy"`
	RevisedAt  time.Time `json:"revisedAt"`
}

// DocumentAttached: the rendered document of Revision was attached. When it
// replaces another document of the same revision, ReplacesSHA256 and
// ReplacesArtifactID name that one.
type DocumentAttached struct {
	QuoteID            string    `json:"quoteId"`
	Status             Status    `json:"status"`
	Revision           int       `json:"revision"`
	SHA256             string    `json:"sha256"`
	ArtifactID         string    `json:"artifactId"`
	MediaType          string    `json:"mediaType"`
	ReplacesSHA256     string    `json:"replacesSha256,omitempty"`
	ReplacesArtifactID string    `json:"replacesArtifactId,omitempty"`
	AttachedBy         string    `json:"attachedBy"`
	AttachedAt         time.Time `json:"attachedAt"`
}

// CharacteristicsSet: a line's characteristics were replaced by
// Characteristics (defaults filled in); the price is cleared.
type CharacteristicsSet struct {
	QuoteID         string         `json:"quoteId"`
	Status          Status         `json:"status"`
	LineID          string         `json:"lineId"`
	Characteristics map[string]any `json:"characteristics,omitempty"`
}

// EventName implements grains.Event.
func (CharacteristicsSet) EventName() string { return EvCharacteristicsSet }

// EventName implements grains.Event.
func (Revised) EventName() string { return EvRevised }

// EventName implements grains.Event.
func (DocumentAttached) EventName() string { return EvDocumentAttached }

// Cancelled: the quote was withdrawn.
type Cancelled struct {
	QuoteID     string    `json:"quoteId"`
	Status      Status    `json:"status"`
	Reason      string    `json:"reason"`
	CancelledBy string    `json:"cancelledBy"`
	CancelledAt time.Time `json:"cancelledAt"`
}

// Expired: the quote reached its ValidUntil before it was accepted,
// rejected or cancelled. Status is "expired", a status TMF648 does not
// define (see package doc).
type Expired struct {
	QuoteID    string    `json:"quoteId"`
	Status     Status    `json:"status"`
	ValidUntil time.Time `json:"validUntil"`
	ExpiredBy  string    `json:"expiredBy"`
	ExpiredAt  time.Time `json:"expiredAt"`
}

// EventName implements grains.Event.
func (Expired) EventName() string { return EvExpired }

// EventName implements grains.Event.
func (LineDiscountSet) EventName() string { return EvLineDiscountSet }

// EventName implements grains.Event.
func (DiscountSet) EventName() string { return EvDiscountSet }

// EventName implements grains.Event.
func (DiscountCleared) EventName() string { return EvDiscountCleared }

// EventName implements grains.Event.
func (Created) EventName() string { return EvCreated }

// EventName implements grains.Event.
func (LineAdded) EventName() string { return EvLineAdded }

// EventName implements grains.Event.
func (LineRemoved) EventName() string { return EvLineRemoved }

// EventName implements grains.Event.
func (Priced) EventName() string { return EvPriced }

// EventName implements grains.Event.
func (Submitted) EventName() string { return EvSubmitted }

// EventName implements grains.Event.
func (Approved) EventName() string { return EvApproved }

// EventName implements grains.Event.
func (Rejected) EventName() string { return EvRejected }

// EventName implements grains.Event.
func (Accepted) EventName() string { return EvAccepted }

// EventName implements grains.Event.
func (Cancelled) EventName() string { return EvCancelled }

// DecodeEvent decodes a quote event from its wire name and JSON payload.
// Unknown fields are ignored (events evolve additively); an unknown name or
// malformed JSON is a CodeBadRequest *grains.Error.
func DecodeEvent(name string, payload []byte) (grains.Event, error) {
	switch name {
	case EvCreated:
		return decodeEvent[Created](name, payload)
	case EvLineAdded:
		return decodeEvent[LineAdded](name, payload)
	case EvLineRemoved:
		return decodeEvent[LineRemoved](name, payload)
	case EvPriced:
		return decodeEvent[Priced](name, payload)
	case EvSubmitted:
		return decodeEvent[Submitted](name, payload)
	case EvApproved:
		return decodeEvent[Approved](name, payload)
	case EvRejected:
		return decodeEvent[Rejected](name, payload)
	case EvAccepted:
		return decodeEvent[Accepted](name, payload)
	case EvCancelled:
		return decodeEvent[Cancelled](name, payload)
	case EvLineDiscountSet:
		return decodeEvent[LineDiscountSet](name, payload)
	case EvDiscountSet:
		return decodeEvent[DiscountSet](name, payload)
	case EvDiscountCleared:
		return decodeEvent[DiscountCleared](name, payload)
	case EvExpired:
		return decodeEvent[Expired](name, payload)
	case EvCharacteristicsSet:
		return decodeEvent[CharacteristicsSet](name, payload)
	case EvRevised:
		return decodeEvent[Revised](name, payload)
	case EvDocumentAttached:
		return decodeEvent[DocumentAttached](name, payload)
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "unknown quote event %q", name)
}

func decodeEvent[E grains.Event](name string, payload []byte) (grains.Event, error) {
	var e E
	if err := grains.DecodePayload(name, payload, &e, false); err != nil {
		return nil, err
	}
	return e, nil
}
