package quote

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/pricing"
	"github.com/shopspring/decimal"
)

// Command wire names.
const (
	CmdCreate     = "create"
	CmdAddLine    = "addLine"
	CmdRemoveLine = "removeLine"
	CmdPrice      = "price"
	CmdSubmit     = "submit"
	CmdApprove    = "approve"
	CmdReject     = "reject"
	CmdAccept     = "accept"
	CmdCancel     = "cancel"

	CmdSetLineDiscount    = "setLineDiscount"
	CmdSetQuoteDiscount   = "setQuoteDiscount"
	CmdClearQuoteDiscount = "clearQuoteDiscount"

	// CmdExpire is sent by the quote's "expire" timer at its validUntil;
	// only role "system" may send it.
	CmdExpire = "expire"

	// CmdAttachDocument attaches the rendered document of an approved
	// revision (sent by the gateway after it stored the document).
	CmdAttachDocument = "attachDocument"
	// CmdSetCharacteristics sets the characteristics of a line.
	CmdSetCharacteristics = "setCharacteristics"
)

// TimerExpire is the ID of the timer that expires a quote at its validUntil.
const TimerExpire = "expire"

// DefaultValidForDays is how long a quote stays valid when create gives
// neither validUntil nor validForDays.
const DefaultValidForDays = 30

// MaxValidForDays bounds validForDays on create.
const MaxValidForDays = 3650

// CmdPricePreview names the read-only price preview (see Preview). It is
// not a grain command: nothing decides or commits it.
const CmdPricePreview = "pricePreview"

// Commands lists every command wire name.
var Commands = []string{CmdCreate, CmdAddLine, CmdRemoveLine, CmdPrice, CmdSubmit, CmdApprove, CmdReject, CmdAccept, CmdCancel,
	CmdSetLineDiscount, CmdSetQuoteDiscount, CmdClearQuoteDiscount, CmdExpire, CmdAttachDocument, CmdSetCharacteristics}

// Create opens a quote for a customer in a currency.
type Create struct {
	CustomerID   string `json:"customerId"`
	CustomerName string `json:"customerName"`
	Currency     string `json:"currency"`
	// TermMonths is the contract term in months, 1..MaxTermMonths; 0 (or
	// absent) when not agreed yet.
	TermMonths int `json:"termMonths,omitempty"`
	// CustomerSegment is the customer's segment as the tenant names them
	// (e.g. "enterprise", "public-sector"); optional.
	CustomerSegment string `json:"customerSegment,omitempty"`
	// ValidUntil is when the quote expires; it must be in the future. At
	// most one of ValidUntil and ValidForDays may be given; with neither
	// the quote is valid for DefaultValidForDays from creation.
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	// ValidForDays is the validity in days from creation, 1..MaxValidForDays.
	ValidForDays int `json:"validForDays,omitempty"`
}

// AddLine adds quantity units of a catalog offering, configured with
// Characteristics (JSON scalars; the catalog's defaults fill the rest) and,
// for a line inside a bundle, ParentLineID naming the bundle line.
type AddLine struct {
	OfferingID      string         `json:"offeringId"`
	Quantity        int            `json:"quantity"`
	Characteristics map[string]any `json:"characteristics,omitempty"`
	ParentLineID    string         `json:"parentLineId,omitempty"`
}

// SetCharacteristics replaces the characteristics of a line: the line's
// values become Characteristics with the catalog's defaults filled in.
type SetCharacteristics struct {
	LineID          string         `json:"lineId"`
	Characteristics map[string]any `json:"characteristics"`
}

// RemoveLine removes one line.
type RemoveLine struct {
	LineID string `json:"lineId"`
}

// PriceQuote prices the current lines.
type PriceQuote struct{}

// Submit sends a priced quote for approval.
type Submit struct{}

// Approve approves the next level a pending quote requires, at its current
// price. Level, when given, must be that level: approvals run in order.
// Revision and PriceHash, when given, must be the quote's current revision
// and price hash (else CodeStaleRevision): the approver approves what they
// saw.
type Approve struct {
	Level     int    `json:"level,omitempty"`
	Revision  int    `json:"revision,omitempty"`
	PriceHash string `json:"priceHash,omitempty"`
}

// Reject rejects a pending quote. Revision and PriceHash work as in Approve.
type Reject struct {
	Reason    string `json:"reason"`
	Revision  int    `json:"revision,omitempty"`
	PriceHash string `json:"priceHash,omitempty"`
}

// Accept records the customer's acceptance of an approved quote.
// DocumentSHA256 is the SHA-256 of the document the customer accepted: it
// must be the one attached to the current revision. Channel is how the
// acceptance reached us (one of Channels, default "api").
type Accept struct {
	DocumentSHA256 string `json:"documentSha256,omitempty"`
	Channel        string `json:"channel,omitempty"`
}

// AttachDocument attaches the rendered document of the current revision of
// an approved quote: its SHA-256 (64 lower-case hex digits), the id of the
// stored artifact and its media type (default DefaultMediaType).
type AttachDocument struct {
	Revision   int    `json:"revision"`
	SHA256     string `json:"sha256"`
	ArtifactID string `json:"artifactId"`
	MediaType  string `json:"mediaType,omitempty"`
}

// Expire expires a quote that is not yet accepted, rejected or cancelled.
// Its timer sends it at the quote's validUntil.
type Expire struct{}

// Cancel withdraws a quote that is not yet decided.
type Cancel struct {
	Reason string `json:"reason"`
}

// SetLineDiscount sets (replaces) the discount of one line: a percent of
// both charges, or an amount off one charge ("oneTime", the default, or
// "monthly"). Amounts are JSON strings or numbers, e.g. "12.5".
type SetLineDiscount struct {
	LineID  string           `json:"lineId"`
	Percent *decimal.Decimal `json:"percent"`
	Amount  *decimal.Decimal `json:"amount"`
	Charge  string           `json:"charge"`
}

// SetQuoteDiscount sets (replaces) the quote-level discount, applied to the
// one-time and the monthly subtotal separately (see package pricing).
type SetQuoteDiscount struct {
	Percent *decimal.Decimal `json:"percent"`
	Amount  *decimal.Decimal `json:"amount"`
	Charge  string           `json:"charge"`
}

// ClearQuoteDiscount removes the quote-level discount.
type ClearQuoteDiscount struct{}

// CommandName implements grains.Command.
func (SetLineDiscount) CommandName() string { return CmdSetLineDiscount }

// CommandName implements grains.Command.
func (SetQuoteDiscount) CommandName() string { return CmdSetQuoteDiscount }

// CommandName implements grains.Command.
func (ClearQuoteDiscount) CommandName() string { return CmdClearQuoteDiscount }

func (c SetLineDiscount) discount() discountPayload {
	return discountPayload{Percent: c.Percent, Amount: c.Amount, Charge: c.Charge}
}

func (c SetQuoteDiscount) discount() discountPayload {
	return discountPayload{Percent: c.Percent, Amount: c.Amount, Charge: c.Charge}
}

// CommandName implements grains.Command.
func (Create) CommandName() string { return CmdCreate }

// CommandName implements grains.Command.
func (AddLine) CommandName() string { return CmdAddLine }

// CommandName implements grains.Command.
func (RemoveLine) CommandName() string { return CmdRemoveLine }

// CommandName implements grains.Command.
func (PriceQuote) CommandName() string { return CmdPrice }

// CommandName implements grains.Command.
func (Submit) CommandName() string { return CmdSubmit }

// CommandName implements grains.Command.
func (Approve) CommandName() string { return CmdApprove }

// CommandName implements grains.Command.
func (Reject) CommandName() string { return CmdReject }

// CommandName implements grains.Command.
func (Accept) CommandName() string { return CmdAccept }

// CommandName implements grains.Command.
func (Cancel) CommandName() string { return CmdCancel }

// CommandName implements grains.Command.
func (Expire) CommandName() string { return CmdExpire }

// CommandName implements grains.Command.
func (AttachDocument) CommandName() string { return CmdAttachDocument }

// CommandName implements grains.Command.
func (SetCharacteristics) CommandName() string { return CmdSetCharacteristics }

// DecodeCommand decodes a wire command. Unknown names, malformed JSON and
// unknown fields are CodeBadRequest; missing or invalid fields are
// CodeValidation with one violation per field.
func DecodeCommand(name string, payload []byte) (grains.Command, error) {
	switch name {
	case CmdCreate:
		return decode(name, payload, func(c Create, v *grains.Violations) {
			if c.CustomerID == "" {
				v.Add("/customerId", "required", "customerId is required")
			}
			if c.Currency == "" {
				v.Add("/currency", "required", "currency is required")
			} else if _, ok := pricing.MinorUnits(c.Currency); !ok {
				v.Add("/currency", "unknown_currency", fmt.Sprintf("%q is not a supported ISO 4217 currency", c.Currency))
			}
			if c.TermMonths < 0 || c.TermMonths > MaxTermMonths {
				v.Add("/termMonths", "range", fmt.Sprintf("termMonths must be 1..%d", MaxTermMonths))
			}
			if len(c.CustomerSegment) > 64 {
				v.Add("/customerSegment", "max_length", "customerSegment must be at most 64 characters")
			}
			if c.ValidForDays < 0 || c.ValidForDays > MaxValidForDays {
				v.Add("/validForDays", "range", fmt.Sprintf("validForDays must be 1..%d", MaxValidForDays))
			}
			if c.ValidUntil != nil && c.ValidForDays != 0 {
				v.Add("/validForDays", "exclusive", "give validUntil or validForDays, not both")
			}
		})
	case CmdAddLine:
		return decode(name, payload, func(c AddLine, v *grains.Violations) {
			if c.OfferingID == "" {
				v.Add("/offeringId", "required", "offeringId is required")
			}
			if c.Quantity < 1 {
				v.Add("/quantity", "min", "quantity must be at least 1")
			} else if c.Quantity > MaxQuantity {
				v.Add("/quantity", "max", fmt.Sprintf("quantity must be at most %d", MaxQuantity))
			}
			checkValues(c.Characteristics, v)
		})
	case CmdSetCharacteristics:
		return decode(name, payload, func(c SetCharacteristics, v *grains.Violations) {
			if c.LineID == "" {
				v.Add("/lineId", "required", "lineId is required")
			}
			checkValues(c.Characteristics, v)
		})
	case CmdRemoveLine:
		return decode(name, payload, func(c RemoveLine, v *grains.Violations) {
			if c.LineID == "" {
				v.Add("/lineId", "required", "lineId is required")
			}
		})
	case CmdPrice:
		return decode(name, payload, func(PriceQuote, *grains.Violations) {})
	case CmdSubmit:
		return decode(name, payload, func(Submit, *grains.Violations) {})
	case CmdApprove:
		return decode(name, payload, func(c Approve, v *grains.Violations) {
			if c.Level < 0 {
				v.Add("/level", "range", "level must be at least 1")
			}
			checkRevisionRef(c.Revision, c.PriceHash, v)
		})
	case CmdReject:
		return decode(name, payload, func(c Reject, v *grains.Violations) {
			if c.Reason == "" {
				v.Add("/reason", "required", "reason is required")
			}
			checkRevisionRef(c.Revision, c.PriceHash, v)
		})
	case CmdAccept:
		return decode(name, payload, func(c Accept, v *grains.Violations) {
			if c.DocumentSHA256 != "" && !isLowerHex64(c.DocumentSHA256) {
				v.Add("/documentSha256", "format", "documentSha256 must be 64 lower-case hex digits")
			}
			if c.Channel != "" && !slices.Contains(Channels, c.Channel) {
				v.Add("/channel", "enum", "channel must be one of "+strings.Join(Channels, ", "))
			}
		})
	case CmdAttachDocument:
		return decode(name, payload, func(c AttachDocument, v *grains.Violations) {
			if c.Revision < 1 {
				v.Add("/revision", "required", "revision must be at least 1")
			}
			if !isLowerHex64(c.SHA256) {
				v.Add("/sha256", "format", "sha256 must be 64 lower-case hex digits")
			}
			if c.ArtifactID == "" {
				v.Add("/artifactId", "required", "artifactId is required")
			} else if len(c.ArtifactID) > 256 {
				v.Add("/artifactId", "max_length", "artifactId must be at most 256 characters")
			}
			if len(c.MediaType) > 128 {
				v.Add("/mediaType", "max_length", "mediaType must be at most 128 characters")
			}
		})
	case CmdCancel:
		return decode(name, payload, func(Cancel, *grains.Violations) {})
	case CmdExpire:
		return decode(name, payload, func(Expire, *grains.Violations) {})
	case CmdSetLineDiscount:
		return decode(name, payload, func(c SetLineDiscount, v *grains.Violations) {
			if c.LineID == "" {
				v.Add("/lineId", "required", "lineId is required")
			}
			c.discount().check(v)
		})
	case CmdSetQuoteDiscount:
		return decode(name, payload, func(c SetQuoteDiscount, v *grains.Violations) { c.discount().check(v) })
	case CmdClearQuoteDiscount:
		return decode(name, payload, func(ClearQuoteDiscount, *grains.Violations) {})
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "unknown quote command %q", name)
}

// checkRevisionRef checks the optional revision and priceHash of approve
// and reject.
func checkRevisionRef(revision int, priceHash string, v *grains.Violations) {
	if revision < 0 {
		v.Add("/revision", "range", "revision must be at least 1")
	}
	if priceHash != "" && !isLowerHex64(priceHash) {
		v.Add("/priceHash", "format", "priceHash must be 64 lower-case hex digits")
	}
}

func decode[C grains.Command](name string, payload []byte, check func(C, *grains.Violations)) (grains.Command, error) {
	var c C
	if err := grains.DecodePayload(name, payload, &c, true); err != nil {
		return nil, err
	}
	var v grains.Violations
	check(c, &v)
	if err := v.Err(name); err != nil {
		return nil, err
	}
	return c, nil
}
