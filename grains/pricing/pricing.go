// Package pricing computes the totals of a quote from its lines: per line a
// one-time and a monthly total, and the quote's totals, in one currency,
// rounded to that currency's minor units.
//
// Rules:
//   - a line total is unit price × quantity, rounded half away from zero to
//     the currency's minor units;
//   - a quote total is the exact sum of its rounded line totals, so the
//     totals always equal the sum of the lines as shown;
//   - lines are ordered: the result lists them in input order, and the hash
//     covers that order, so the same lines in another order hash
//     differently (while the totals stay the same);
//   - the hash is the hex SHA-256 of a canonical JSON document holding every
//     input and output (fixed field order, decimals as strings at a fixed
//     scale), so a result is reproducible and comparable from its inputs.
package pricing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/grainline/grainline/grains"
	"github.com/shopspring/decimal"
)

// Algorithm names the pricing rules above. It is part of the hashed
// document: a change of rules must change it.
const Algorithm = "grainline.pricing.v1"

// Line is one input line.
type Line struct {
	LineID      string
	OfferingID  string
	Quantity    int
	UnitOneTime decimal.Decimal
	UnitMonthly decimal.Decimal
}

// LineResult is one priced line, in input order.
type LineResult struct {
	LineID       string
	OneTimeTotal decimal.Decimal
	MonthlyTotal decimal.Decimal
}

// Result is a priced set of lines.
type Result struct {
	Currency     string
	Scale        int32 // the currency's minor units
	Lines        []LineResult
	OneTimeTotal decimal.Decimal
	MonthlyTotal decimal.Decimal
	Hash         string // hex SHA-256 of the canonical inputs and outputs
}

// Price prices lines in currency. An unknown currency, a quantity below 1, a
// negative unit price or a duplicate line id is a CodeValidation *grains.Error
// with one violation per problem (pointers "/currency", "/lines/<i>/...").
// No lines is valid and prices to zero.
func Price(lines []Line, currency string) (Result, error) {
	var v grains.Violations
	scale, ok := MinorUnits(currency)
	if !ok {
		v.Add("/currency", "unknown_currency", fmt.Sprintf("%q is not a known ISO 4217 currency", currency))
	}
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
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
	}
	if err := v.Err("price"); err != nil {
		return Result{}, err
	}

	res := Result{Currency: currency, Scale: scale, Lines: make([]LineResult, len(lines)),
		OneTimeTotal: decimal.Zero, MonthlyTotal: decimal.Zero}
	for i, l := range lines {
		q := decimal.NewFromInt(int64(l.Quantity))
		lr := LineResult{
			LineID:       l.LineID,
			OneTimeTotal: l.UnitOneTime.Mul(q).Round(scale),
			MonthlyTotal: l.UnitMonthly.Mul(q).Round(scale),
		}
		res.Lines[i] = lr
		res.OneTimeTotal = res.OneTimeTotal.Add(lr.OneTimeTotal)
		res.MonthlyTotal = res.MonthlyTotal.Add(lr.MonthlyTotal)
	}
	hash, err := hashOf(lines, res)
	if err != nil {
		return Result{}, err
	}
	res.Hash = hash
	return res, nil
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

type canonicalLine struct {
	LineID       string `json:"lineId"`
	OfferingID   string `json:"offeringId"`
	Quantity     int    `json:"quantity"`
	UnitOneTime  string `json:"unitOneTime"`
	UnitMonthly  string `json:"unitMonthly"`
	OneTimeTotal string `json:"oneTimeTotal"`
	MonthlyTotal string `json:"monthlyTotal"`
}

type canonicalDoc struct {
	Algorithm    string          `json:"algorithm"`
	Currency     string          `json:"currency"`
	Lines        []canonicalLine `json:"lines"`
	OneTimeTotal string          `json:"oneTimeTotal"`
	MonthlyTotal string          `json:"monthlyTotal"`
}

// Canonical returns the canonical JSON document the hash is computed over.
// It is exported so that a stored result can be explained and re-verified.
func Canonical(lines []Line, r Result) ([]byte, error) {
	doc := canonicalDoc{
		Algorithm:    Algorithm,
		Currency:     r.Currency,
		Lines:        make([]canonicalLine, len(lines)),
		OneTimeTotal: Format(r.OneTimeTotal, r.Scale),
		MonthlyTotal: Format(r.MonthlyTotal, r.Scale),
	}
	for i, l := range lines {
		doc.Lines[i] = canonicalLine{
			LineID:       l.LineID,
			OfferingID:   l.OfferingID,
			Quantity:     l.Quantity,
			UnitOneTime:  FormatUnit(l.UnitOneTime, r.Scale),
			UnitMonthly:  FormatUnit(l.UnitMonthly, r.Scale),
			OneTimeTotal: Format(r.Lines[i].OneTimeTotal, r.Scale),
			MonthlyTotal: Format(r.Lines[i].MonthlyTotal, r.Scale),
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("pricing: canonical document: %w", err)
	}
	return b, nil
}

func hashOf(lines []Line, r Result) (string, error) {
	b, err := Canonical(lines, r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
