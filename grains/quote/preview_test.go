package quote_test

import (
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// Preview gives exactly what price then commits, changes nothing, and
// checks role and existence.
func TestPreviewMatchesPrice(t *testing.T) {
	s := step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`)
	s = step(t, s, "addLine", `{"offeringId":"sdwan-edge-m","quantity":50}`)
	s = step(t, s, "addLine", `{"offeringId":"support-premium","quantity":50}`)
	s = step(t, s, "setLineDiscount", `{"lineId":"2","amount":"100","charge":"monthly"}`)
	s = step(t, s, "setQuoteDiscount", `{"percent":"2.5"}`)
	before := quote.Behavior.Fold(s, nil)
	r, err := quote.Preview(s, env("approver"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Price != nil {
		t.Fatal("preview priced the state")
	}
	priced := step(t, s, "price", `{}`)
	if priced.Price.Hash != r.Hash || priced.Price.OneTimeTotal != r.OneTime() || priced.Price.MonthlyTotal != r.Monthly() {
		t.Fatalf("preview %s %s/%s, price %s %s/%s", r.Hash, r.OneTime(), r.Monthly(), priced.Price.Hash, priced.Price.OneTimeTotal, priced.Price.MonthlyTotal)
	}
	// 50 x 1290.00 = 64500.00, less 2.5% = 62887.50
	if r.OneTime() != "62887.50" || r.Lines[0].Tier != 50 {
		t.Fatalf("one-time %s tier %d", r.OneTime(), r.Lines[0].Tier)
	}
	if len(before.Lines) != len(s.Lines) || before.Price != nil {
		t.Fatal("state changed")
	}
	// Previewing a priced, decided quote still works.
	if r2, err := quote.Preview(priced, env("sales")); err != nil || r2.Hash != r.Hash {
		t.Fatalf("preview of priced quote: %v", err)
	}
	if _, err := quote.Preview(s, env("ops")); grains.CodeOf(err) != grains.CodeForbidden {
		t.Fatalf("without role: %v", err)
	}
	if _, err := quote.Preview(quote.State{}, env("sales")); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("missing quote: %v", err)
	}
	empty := step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`)
	if _, err := quote.Preview(empty, env("sales")); grains.CodeOf(err) != grains.CodeValidation {
		t.Fatalf("no lines: %v", err)
	}
}

// A snapshot written before lines kept their terms prices at the lines'
// unit prices, and a line discount on such a line still applies.
func TestPreviewOfOldSnapshot(t *testing.T) {
	s := step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`)
	s = step(t, s, "addLine", `{"offeringId":"dia-1g","quantity":2}`)
	s.Terms = nil
	r, err := quote.Preview(s, env("sales"))
	if err != nil || r.OneTime() != "1980.00" {
		t.Fatalf("old snapshot: %v %s", err, r.OneTime())
	}
	s = step(t, s, "setLineDiscount", `{"lineId":"1","percent":"50"}`)
	if r, err := quote.Preview(s, env("sales")); err != nil || r.OneTime() != "990.00" || r.Monthly() != "649.00" {
		t.Fatalf("old snapshot with discount: %v %s/%s", err, r.OneTime(), r.Monthly())
	}
}
