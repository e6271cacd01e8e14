package quote

import (
	"fmt"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/pricing"
	"github.com/shopspring/decimal"
)

// Discount is a line or quote discount as the quote records it: a percent
// (of both charges) or an amount off one charge ("oneTime", the default, or
// "monthly"). Amounts are at the quote currency's scale.
type Discount struct {
	Percent string `json:"percent,omitempty"`
	Amount  string `json:"amount,omitempty"`
	Charge  string `json:"charge,omitempty"`
}

// LineTerms is what pricing needs of a line beyond grains.Line: the list
// prices and volume tiers of the catalog version the line was added from,
// and the line's discount.
type LineTerms struct {
	ListOneTime string         `json:"listOneTime"`
	ListMonthly string         `json:"listMonthly"`
	Tiers       []catalog.Tier `json:"tiers,omitempty"`
	Discount    *Discount      `json:"discount,omitempty"`
}

// discountPayload is the wire form of a discount in a command.
type discountPayload struct {
	Percent *decimal.Decimal `json:"percent"`
	Amount  *decimal.Decimal `json:"amount"`
	Charge  string           `json:"charge"`
}

func (p discountPayload) pricing() pricing.Discount {
	d := pricing.Discount{Percent: decimal.Zero, Amount: decimal.Zero, Charge: pricing.Charge(p.Charge)}
	if p.Percent != nil {
		d.Percent = *p.Percent
	}
	if p.Amount != nil {
		d.Amount = *p.Amount
	}
	return d
}

// check validates the payload's shape; the currency scale is checked by
// Decide, which knows the currency.
func (p discountPayload) check(v *grains.Violations) {
	if p.Percent != nil && p.Percent.IsZero() {
		v.Add("/percent", "range", "percent must be above 0 and at most 100")
		return
	}
	if p.Amount != nil && p.Amount.IsZero() {
		v.Add("/amount", "min", "amount must be above zero")
		return
	}
	pricing.CheckDiscount(p.pricing(), 0, false, "", v)
}

// record turns a valid payload into the Discount the quote records.
func (p discountPayload) record(currency string) (*Discount, error) {
	scale, known := pricing.MinorUnits(currency)
	var v grains.Violations
	d := p.pricing()
	pricing.CheckDiscount(d, scale, known, "", &v)
	if err := v.Err("discount"); err != nil {
		return nil, err
	}
	if d.IsPercent() {
		return &Discount{Percent: d.Percent.String()}, nil
	}
	charge := d.Charge
	if charge == "" {
		charge = pricing.ChargeOneTime
	}
	return &Discount{Amount: pricing.Format(d.Amount, scale), Charge: string(charge)}, nil
}

func (d *Discount) pricing() (*pricing.Discount, error) {
	if d == nil {
		return nil, nil
	}
	out := pricing.Discount{Percent: decimal.Zero, Amount: decimal.Zero, Charge: pricing.Charge(d.Charge)}
	var err error
	if d.Percent != "" {
		if out.Percent, err = decimal.NewFromString(d.Percent); err != nil {
			return nil, fmt.Errorf("percent %q: %w", d.Percent, err)
		}
	}
	if d.Amount != "" {
		if out.Amount, err = decimal.NewFromString(d.Amount); err != nil {
			return nil, fmt.Errorf("amount %q: %w", d.Amount, err)
		}
	}
	return &out, nil
}

func sameDiscount(a, b *Discount) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Input is the pricing input of s's current lines: list prices and tiers
// from each line's terms (lines recorded before terms existed price at their
// unit prices), line discounts, and the quote discount.
func Input(s State) (pricing.Input, error) {
	in := pricing.Input{Currency: s.Currency, Lines: make([]pricing.Line, len(s.Lines))}
	for i, l := range s.Lines {
		one, mon := l.UnitOneTime, l.UnitMonthly
		t, hasTerms := s.Terms[l.LineID]
		if hasTerms {
			one, mon = t.ListOneTime, t.ListMonthly
		}
		u1, err1 := decimal.NewFromString(one)
		u2, err2 := decimal.NewFromString(mon)
		if err1 != nil || err2 != nil {
			return pricing.Input{}, grains.Errorf(grains.CodeInternal, "line %s has a malformed unit price", l.LineID)
		}
		pl := pricing.Line{LineID: l.LineID, OfferingID: l.OfferingID, Quantity: l.Quantity, UnitOneTime: u1, UnitMonthly: u2,
			Characteristics: l.Characteristics, ParentLineID: l.ParentLineID}
		if hasTerms {
			pl.Tiers = t.Tiers
			d, err := t.Discount.pricing()
			if err != nil {
				return pricing.Input{}, grains.Errorf(grains.CodeInternal, "line %s discount: %v", l.LineID, err)
			}
			pl.Discount = d
		}
		in.Lines[i] = pl
	}
	d, err := s.Discount.pricing()
	if err != nil {
		return pricing.Input{}, grains.Errorf(grains.CodeInternal, "quote discount: %v", err)
	}
	in.Discount = d
	return in, nil
}

// Preview prices s's current lines, with their tiers and discounts, exactly
// as the price command would, and changes nothing: it is a pure function
// over the state. The caller needs role sales or approver (any level); a quote that does
// not exist is CodeNotFound and one without lines CodeValidation. It works
// in every status, so a decided quote can still be explained.
func Preview(s State, env grains.Env) (pricing.Result, error) {
	if approval.Authority(env.Roles) < 1 {
		if err := grains.RequireRole(env, CmdPricePreview, RoleSales, RoleApprover); err != nil {
			return pricing.Result{}, err
		}
	}
	if !Exists(s) {
		return pricing.Result{}, grains.NotFound(grains.KindQuote, env.ID, CmdPricePreview)
	}
	if len(s.Lines) == 0 {
		return pricing.Result{}, grains.Errorf(grains.CodeValidation, "%s: quote %s has no lines", CmdPricePreview, s.ID)
	}
	in, err := Input(s)
	if err != nil {
		return pricing.Result{}, err
	}
	return pricing.Evaluate(in)
}

func cloneTerms(m map[string]LineTerms) map[string]LineTerms {
	out := make(map[string]LineTerms, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
