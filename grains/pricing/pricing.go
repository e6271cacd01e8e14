// Package pricing computes the totals of a quote from its lines: per line a
// one-time and a monthly total, and the quote's totals, in one currency,
// rounded to that currency's ISO 4217 minor units. One-time and monthly
// recurring money are never mixed: every step below runs for each charge
// separately.
//
// Rules (algorithm grainline.pricing.v2), in the order the trace shows them:
//
//  1. unit: a line's unit prices are its list prices, or those of the volume
//     tier with the highest MinQuantity not above the quantity (all units
//     alike);
//  2. gross: unit price × quantity, rounded half away from zero to the
//     currency's minor units;
//  3. line discount (optional): a percent p in (0, 100] takes
//     round(gross × p / 100) off each charge; an amount takes that amount
//     off the one charge it names (oneTime by default), at most the
//     charge's gross, so a line total never goes below zero;
//  4. subtotal: the exact sum of the rounded net line totals, per charge;
//  5. quote discount (optional): applied to the one-time and the monthly
//     subtotal separately by the same rule as a line discount: a percent
//     takes round(subtotal × p / 100) off each subtotal, an amount comes off
//     the one subtotal it names, at most that subtotal;
//  6. total: subtotal minus the quote discount, per charge. Totals therefore
//     always equal the sum of the lines as shown minus the quote discount,
//     and are never negative.
//
// Lines are ordered: the result lists them in input order, and the hash
// covers that order. The hash is the hex SHA-256 of a canonical JSON
// document holding the algorithm name, every input (including tiers that
// did not apply) and every output (fixed field order, amounts as strings at
// the currency's scale), so a result is reproducible and comparable from its
// inputs.
package pricing

import (
	"fmt"
	"strconv"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/shopspring/decimal"
)

// Algorithm names the pricing rules above. It is part of the hashed
// document: a change of rules must change it.
const Algorithm = "grainline.pricing.v2"

// Charge names one of the two kinds of money a line carries.
type Charge string

// The charges.
const (
	ChargeOneTime Charge = "oneTime"
	ChargeMonthly Charge = "monthly"
)

var hundred = decimal.NewFromInt(100)

// Discount is a percent or an amount off. Exactly one of Percent and Amount
// is non-zero. Charge names the charge an amount reduces (default
// ChargeOneTime); a percent reduces both.
type Discount struct {
	Percent decimal.Decimal
	Amount  decimal.Decimal
	Charge  Charge
}

// IsPercent reports whether d is a percent discount.
func (d Discount) IsPercent() bool { return !d.Percent.IsZero() }

func (d Discount) charge() Charge {
	if d.Charge == "" {
		return ChargeOneTime
	}
	return d.Charge
}

// Line is one input line. Tiers are the volume tiers of its price (see
// catalog.Price); UnitOneTime and UnitMonthly are the list prices.
type Line struct {
	LineID      string
	OfferingID  string
	Quantity    int
	UnitOneTime decimal.Decimal
	UnitMonthly decimal.Decimal
	Tiers       []catalog.Tier
	Discount    *Discount
	// Characteristics and ParentLineID are the line's configuration. They
	// do not change the amounts, but they are hashed: two configurations of
	// the same offering never share a price hash.
	Characteristics map[string]any
	ParentLineID    string
}

// Input is everything a price depends on.
type Input struct {
	Currency string
	Lines    []Line
	Discount *Discount // the quote-level discount, nil for none
}

// Pair is one amount per charge.
type Pair struct {
	OneTime decimal.Decimal
	Monthly decimal.Decimal
}

func (p Pair) add(q Pair) Pair { return Pair{p.OneTime.Add(q.OneTime), p.Monthly.Add(q.Monthly)} }
func (p Pair) sub(q Pair) Pair { return Pair{p.OneTime.Sub(q.OneTime), p.Monthly.Sub(q.Monthly)} }

// LineResult is one priced line, in input order.
type LineResult struct {
	LineID       string
	Tier         int // MinQuantity of the tier applied; 0 for the list prices
	UnitOneTime  decimal.Decimal
	UnitMonthly  decimal.Decimal
	Gross        Pair
	Discount     Pair
	OneTimeTotal decimal.Decimal // net of the line discount
	MonthlyTotal decimal.Decimal
}

// Step is one step of the trace: what was computed, from which inputs, and
// its output, all rendered as strings.
type Step struct {
	What   string            `json:"what"`
	LineID string            `json:"lineId,omitempty"`
	Inputs map[string]string `json:"inputs"`
	Output map[string]string `json:"output"`
}

// Result is a priced set of lines.
type Result struct {
	Currency      string
	Scale         int32 // the currency's minor units
	Lines         []LineResult
	Subtotal      Pair // sum of the net line totals
	QuoteDiscount Pair
	OneTimeTotal  decimal.Decimal
	MonthlyTotal  decimal.Decimal
	Trace         []Step
	Hash          string // hex SHA-256 of the canonical inputs and outputs
}

// Price prices lines in currency without a quote discount.
func Price(lines []Line, currency string) (Result, error) {
	return Evaluate(Input{Currency: currency, Lines: lines})
}

// Evaluate prices in. An unknown currency, a quantity below 1, a negative
// price, a duplicate line id, misordered tiers or an invalid discount is a
// CodeValidation *grains.Error with one violation per problem (pointers
// "/currency", "/lines/<i>/...", "/discount/..."). No lines is valid and
// prices to zero.
func Evaluate(in Input) (Result, error) {
	scale, err := validate(in)
	if err != nil {
		return Result{}, err
	}
	res := Result{Currency: in.Currency, Scale: scale, Lines: make([]LineResult, len(in.Lines)),
		Subtotal: Pair{decimal.Zero, decimal.Zero}}
	f := func(d decimal.Decimal) string { return Format(d, scale) }
	for i, l := range in.Lines {
		one, mon, tier := unit(l)
		res.Trace = append(res.Trace, Step{What: "unit", LineID: l.LineID,
			Inputs: map[string]string{"quantity": strconv.Itoa(l.Quantity), "listOneTime": FormatUnit(l.UnitOneTime, scale),
				"listMonthly": FormatUnit(l.UnitMonthly, scale), "tiers": strconv.Itoa(len(l.Tiers))},
			Output: map[string]string{"tier": strconv.Itoa(tier), "unitOneTime": FormatUnit(one, scale), "unitMonthly": FormatUnit(mon, scale)}})
		q := decimal.NewFromInt(int64(l.Quantity))
		gross := Pair{one.Mul(q).Round(scale), mon.Mul(q).Round(scale)}
		res.Trace = append(res.Trace, Step{What: "gross", LineID: l.LineID,
			Inputs: map[string]string{"quantity": strconv.Itoa(l.Quantity), "unitOneTime": FormatUnit(one, scale), "unitMonthly": FormatUnit(mon, scale)},
			Output: map[string]string{"oneTime": f(gross.OneTime), "monthly": f(gross.Monthly)}})
		off := Pair{decimal.Zero, decimal.Zero}
		if l.Discount != nil {
			off = discountOf(*l.Discount, gross, scale)
			res.Trace = append(res.Trace, discountStep("lineDiscount", l.LineID, *l.Discount, gross, off, scale))
		}
		net := gross.sub(off)
		res.Lines[i] = LineResult{LineID: l.LineID, Tier: tier, UnitOneTime: one, UnitMonthly: mon,
			Gross: gross, Discount: off, OneTimeTotal: net.OneTime, MonthlyTotal: net.Monthly}
		res.Subtotal = res.Subtotal.add(net)
	}
	res.Trace = append(res.Trace, Step{What: "subtotal",
		Inputs: map[string]string{"lines": strconv.Itoa(len(in.Lines))},
		Output: map[string]string{"oneTime": f(res.Subtotal.OneTime), "monthly": f(res.Subtotal.Monthly)}})
	res.QuoteDiscount = Pair{decimal.Zero, decimal.Zero}
	if in.Discount != nil {
		res.QuoteDiscount = discountOf(*in.Discount, res.Subtotal, scale)
		res.Trace = append(res.Trace, discountStep("quoteDiscount", "", *in.Discount, res.Subtotal, res.QuoteDiscount, scale))
	}
	total := res.Subtotal.sub(res.QuoteDiscount)
	res.OneTimeTotal, res.MonthlyTotal = total.OneTime, total.Monthly
	res.Trace = append(res.Trace, Step{What: "total",
		Inputs: map[string]string{"subtotalOneTime": f(res.Subtotal.OneTime), "subtotalMonthly": f(res.Subtotal.Monthly),
			"discountOneTime": f(res.QuoteDiscount.OneTime), "discountMonthly": f(res.QuoteDiscount.Monthly)},
		Output: map[string]string{"oneTime": f(total.OneTime), "monthly": f(total.Monthly)}})
	hash, err := hashOf(in, res)
	if err != nil {
		return Result{}, err
	}
	res.Hash = hash
	return res, nil
}

func unit(l Line) (oneTime, monthly decimal.Decimal, tier int) {
	return catalog.Price{OneTime: l.UnitOneTime, MonthlyRecurring: l.UnitMonthly, Tiers: l.Tiers}.Unit(l.Quantity)
}

// discountOf is the amount d takes off base, per charge, never more than
// base.
func discountOf(d Discount, base Pair, scale int32) Pair {
	if d.IsPercent() {
		return Pair{
			decimal.Min(base.OneTime.Mul(d.Percent).Div(hundred).Round(scale), base.OneTime),
			decimal.Min(base.Monthly.Mul(d.Percent).Div(hundred).Round(scale), base.Monthly),
		}
	}
	if d.charge() == ChargeMonthly {
		return Pair{decimal.Zero, decimal.Min(d.Amount, base.Monthly)}
	}
	return Pair{decimal.Min(d.Amount, base.OneTime), decimal.Zero}
}

func discountStep(what, lineID string, d Discount, base, off Pair, scale int32) Step {
	in := map[string]string{"baseOneTime": Format(base.OneTime, scale), "baseMonthly": Format(base.Monthly, scale)}
	if d.IsPercent() {
		in["percent"] = d.Percent.String()
	} else {
		in["amount"] = Format(d.Amount, scale)
		in["charge"] = string(d.charge())
	}
	net := base.sub(off)
	return Step{What: what, LineID: lineID, Inputs: in, Output: map[string]string{
		"discountOneTime": Format(off.OneTime, scale), "discountMonthly": Format(off.Monthly, scale),
		"oneTime": Format(net.OneTime, scale), "monthly": Format(net.Monthly, scale)}}
}

func validate(in Input) (int32, error) {
	var v grains.Violations
	scale, ok := MinorUnits(in.Currency)
	if !ok {
		v.Add("/currency", "unknown_currency", fmt.Sprintf("%q is not a known ISO 4217 currency", in.Currency))
	}
	seen := make(map[string]bool, len(in.Lines))
	for i, l := range in.Lines {
		at := "/lines/" + strconv.Itoa(i)
		if l.LineID == "" {
			v.Add(at+"/lineId", "required", "line id is required")
		} else if seen[l.LineID] {
			v.Add(at+"/lineId", "duplicate", fmt.Sprintf("line id %q appears twice", l.LineID))
		}
		seen[l.LineID] = true
		if l.Quantity < 1 {
			v.Add(at+"/quantity", "min", "quantity must be at least 1")
		}
		if l.UnitOneTime.IsNegative() {
			v.Add(at+"/unitOneTime", "min", "unit price must not be negative")
		}
		if l.UnitMonthly.IsNegative() {
			v.Add(at+"/unitMonthly", "min", "unit price must not be negative")
		}
		prev := 1
		for j, t := range l.Tiers {
			tat := at + "/tiers/" + strconv.Itoa(j)
			if t.MinQuantity <= prev {
				v.Add(tat+"/minQuantity", "order", fmt.Sprintf("minQuantity must be above %d", prev))
			}
			if t.OneTime.IsNegative() || t.MonthlyRecurring.IsNegative() {
				v.Add(tat, "min", "tier prices must not be negative")
			}
			if t.MinQuantity > prev {
				prev = t.MinQuantity
			}
		}
		if l.Discount != nil {
			CheckDiscount(*l.Discount, scale, ok, at+"/discount", &v)
		}
	}
	if in.Discount != nil {
		CheckDiscount(*in.Discount, scale, ok, "/discount", &v)
	}
	return scale, v.Err("price")
}

// CheckDiscount records in v what is wrong with d, at pointer: both or
// neither of percent and amount, a percent outside (0, 100], an amount not
// above zero or finer than the currency's minor units (checked only when
// scaleKnown), or an unknown charge.
func CheckDiscount(d Discount, scale int32, scaleKnown bool, pointer string, v *grains.Violations) {
	switch {
	case d.Percent.IsZero() && d.Amount.IsZero():
		v.Add(pointer, "required", "a discount needs a percent or an amount above zero")
	case !d.Percent.IsZero() && !d.Amount.IsZero():
		v.Add(pointer, "exclusive", "a discount is a percent or an amount, not both")
	case d.IsPercent():
		if d.Percent.IsNegative() || d.Percent.GreaterThan(hundred) {
			v.Add(pointer+"/percent", "range", "percent must be above 0 and at most 100")
		}
	default:
		if d.Amount.IsNegative() {
			v.Add(pointer+"/amount", "min", "amount must be above zero")
		} else if scaleKnown && !d.Amount.Equal(d.Amount.Round(scale)) {
			v.Add(pointer+"/amount", "scale", fmt.Sprintf("amount has more than %d decimal places", scale))
		}
	}
	if d.Charge != "" && d.Charge != ChargeOneTime && d.Charge != ChargeMonthly {
		v.Add(pointer+"/charge", "enum", `charge must be "oneTime" or "monthly"`)
	} else if d.Charge == ChargeMonthly && d.IsPercent() {
		v.Add(pointer+"/charge", "percent", "a percent applies to both charges; charge is for an amount only")
	}
}

// Format renders an amount at scale decimal places, e.g. "1234.50".
func Format(d decimal.Decimal, scale int32) string { return d.StringFixed(scale) }

// FormatUnit renders a unit price with at least scale decimal places and
// more only when the price itself has more significant digits, so 10,
// 10.0 and 10.00 all render as "10.00" in EUR while 0.125 stays "0.125".
func FormatUnit(d decimal.Decimal, scale int32) string {
	// String drops trailing zeros; parsing it back gives the smallest
	// exponent that still represents d exactly.
	min := decimal.RequireFromString(d.String())
	if s := -min.Exponent(); s > scale {
		scale = s
	}
	return d.StringFixed(scale)
}

// Amounts of a Result, rendered for JSON.

// OneTime renders the result's one-time total.
func (r Result) OneTime() string { return Format(r.OneTimeTotal, r.Scale) }

// Monthly renders the result's monthly total.
func (r Result) Monthly() string { return Format(r.MonthlyTotal, r.Scale) }
