package pricing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

type canonicalTier struct {
	MinQuantity int    `json:"minQuantity"`
	OneTime     string `json:"oneTime"`
	Monthly     string `json:"monthly"`
}

type canonicalDiscount struct {
	Percent string `json:"percent,omitempty"`
	Amount  string `json:"amount,omitempty"`
	Charge  string `json:"charge,omitempty"`
}

type canonicalLine struct {
	LineID          string             `json:"lineId"`
	OfferingID      string             `json:"offeringId"`
	Quantity        int                `json:"quantity"`
	ListOneTime     string             `json:"listOneTime"`
	ListMonthly     string             `json:"listMonthly"`
	Tiers           []canonicalTier    `json:"tiers"`
	Discount        *canonicalDiscount `json:"discount"`
	Tier            int                `json:"tier"`
	UnitOneTime     string             `json:"unitOneTime"`
	UnitMonthly     string             `json:"unitMonthly"`
	GrossOneTime    string             `json:"grossOneTime"`
	GrossMonthly    string             `json:"grossMonthly"`
	DiscountOneTime string             `json:"discountOneTime"`
	DiscountMonthly string             `json:"discountMonthly"`
	OneTimeTotal    string             `json:"oneTimeTotal"`
	MonthlyTotal    string             `json:"monthlyTotal"`
	// Absent for lines without configuration, so their hash is the one
	// computed before configuration existed. encoding/json writes map keys
	// sorted.
	Characteristics map[string]any `json:"characteristics,omitempty"`
	ParentLineID    string         `json:"parentLineId,omitempty"`
}

type canonicalDoc struct {
	Algorithm       string             `json:"algorithm"`
	Currency        string             `json:"currency"`
	Lines           []canonicalLine    `json:"lines"`
	Discount        *canonicalDiscount `json:"discount"`
	SubtotalOneTime string             `json:"subtotalOneTime"`
	SubtotalMonthly string             `json:"subtotalMonthly"`
	DiscountOneTime string             `json:"discountOneTime"`
	DiscountMonthly string             `json:"discountMonthly"`
	OneTimeTotal    string             `json:"oneTimeTotal"`
	MonthlyTotal    string             `json:"monthlyTotal"`
}

func canonicalDisc(d *Discount, scale int32) *canonicalDiscount {
	if d == nil {
		return nil
	}
	if d.IsPercent() {
		return &canonicalDiscount{Percent: d.Percent.String()}
	}
	return &canonicalDiscount{Amount: Format(d.Amount, scale), Charge: string(d.charge())}
}

// Canonical returns the canonical JSON document the hash is computed over:
// the algorithm, every input and every output of r. It is exported so that
// a stored result can be explained and re-verified.
func Canonical(in Input, r Result) ([]byte, error) {
	s := r.Scale
	if len(r.Lines) != len(in.Lines) {
		return nil, fmt.Errorf("pricing: canonical document: %d results for %d lines", len(r.Lines), len(in.Lines))
	}
	doc := canonicalDoc{
		Algorithm: Algorithm, Currency: r.Currency, Lines: make([]canonicalLine, len(in.Lines)),
		Discount:        canonicalDisc(in.Discount, s),
		SubtotalOneTime: Format(r.Subtotal.OneTime, s), SubtotalMonthly: Format(r.Subtotal.Monthly, s),
		DiscountOneTime: Format(r.QuoteDiscount.OneTime, s), DiscountMonthly: Format(r.QuoteDiscount.Monthly, s),
		OneTimeTotal: Format(r.OneTimeTotal, s), MonthlyTotal: Format(r.MonthlyTotal, s),
	}
	for i, l := range in.Lines {
		lr := r.Lines[i]
		tiers := make([]canonicalTier, len(l.Tiers))
		for j, t := range l.Tiers {
			tiers[j] = canonicalTier{t.MinQuantity, FormatUnit(t.OneTime, s), FormatUnit(t.MonthlyRecurring, s)}
		}
		doc.Lines[i] = canonicalLine{
			LineID: l.LineID, OfferingID: l.OfferingID, Quantity: l.Quantity,
			ListOneTime: FormatUnit(l.UnitOneTime, s), ListMonthly: FormatUnit(l.UnitMonthly, s),
			Tiers: tiers, Discount: canonicalDisc(l.Discount, s), Tier: lr.Tier,
			UnitOneTime: FormatUnit(lr.UnitOneTime, s), UnitMonthly: FormatUnit(lr.UnitMonthly, s),
			GrossOneTime: Format(lr.Gross.OneTime, s), GrossMonthly: Format(lr.Gross.Monthly, s),
			DiscountOneTime: Format(lr.Discount.OneTime, s), DiscountMonthly: Format(lr.Discount.Monthly, s),
			OneTimeTotal: Format(lr.OneTimeTotal, s), MonthlyTotal: Format(lr.MonthlyTotal, s),
			Characteristics: l.Characteristics, ParentLineID: l.ParentLineID,
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("pricing: canonical document: %w", err)
	}
	return b, nil
}

func hashOf(in Input, r Result) (string, error) {
	b, err := Canonical(in, r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// LineView is one priced line as JSON shows it.
type LineView struct {
	LineID          string `json:"lineId"`
	Tier            int    `json:"tier"`
	UnitOneTime     string `json:"unitOneTime"`
	UnitMonthly     string `json:"unitMonthly"`
	GrossOneTime    string `json:"grossOneTime"`
	GrossMonthly    string `json:"grossMonthly"`
	DiscountOneTime string `json:"discountOneTime"`
	DiscountMonthly string `json:"discountMonthly"`
	OneTimeTotal    string `json:"oneTimeTotal"`
	MonthlyTotal    string `json:"monthlyTotal"`
}

// View is a Result as JSON shows it: every amount a string at the
// currency's scale (unit prices at least that), plus the trace and hash.
type View struct {
	Algorithm       string     `json:"algorithm"`
	Currency        string     `json:"currency"`
	Lines           []LineView `json:"lines"`
	SubtotalOneTime string     `json:"subtotalOneTime"`
	SubtotalMonthly string     `json:"subtotalMonthly"`
	DiscountOneTime string     `json:"discountOneTime"`
	DiscountMonthly string     `json:"discountMonthly"`
	OneTimeTotal    string     `json:"oneTimeTotal"`
	MonthlyTotal    string     `json:"monthlyTotal"`
	Trace           []Step     `json:"trace"`
	Hash            string     `json:"hash"`
}

// View renders r for JSON.
func (r Result) View() View {
	s := r.Scale
	v := View{Algorithm: Algorithm, Currency: r.Currency, Lines: make([]LineView, len(r.Lines)),
		SubtotalOneTime: Format(r.Subtotal.OneTime, s), SubtotalMonthly: Format(r.Subtotal.Monthly, s),
		DiscountOneTime: Format(r.QuoteDiscount.OneTime, s), DiscountMonthly: Format(r.QuoteDiscount.Monthly, s),
		OneTimeTotal: r.OneTime(), MonthlyTotal: r.Monthly(), Trace: r.Trace, Hash: r.Hash}
	for i, l := range r.Lines {
		v.Lines[i] = LineView{LineID: l.LineID, Tier: l.Tier,
			UnitOneTime: FormatUnit(l.UnitOneTime, s), UnitMonthly: FormatUnit(l.UnitMonthly, s),
			GrossOneTime: Format(l.Gross.OneTime, s), GrossMonthly: Format(l.Gross.Monthly, s),
			DiscountOneTime: Format(l.Discount.OneTime, s), DiscountMonthly: Format(l.Discount.Monthly, s),
			OneTimeTotal: Format(l.OneTimeTotal, s), MonthlyTotal: Format(l.MonthlyTotal, s)}
	}
	if v.Trace == nil {
		v.Trace = []Step{}
	}
	return v
}
