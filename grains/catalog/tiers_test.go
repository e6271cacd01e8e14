package catalog

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestPriceUnitTiers(t *testing.T) {
	p := Price{Currency: "EUR", OneTime: decimal.RequireFromString("100"), MonthlyRecurring: decimal.RequireFromString("10"),
		Tiers: []Tier{tier(10, "90", "9"), tier(50, "80", "8")}}
	for _, tt := range []struct {
		qty      int
		one, mon string
		tier     int
	}{
		{1, "100", "10", 0}, {9, "100", "10", 0}, {10, "90", "9", 10}, {49, "90", "9", 10}, {50, "80", "8", 50}, {100000, "80", "8", 50},
	} {
		one, mon, tr := p.Unit(tt.qty)
		if one.String() != tt.one || mon.String() != tt.mon || tr != tt.tier {
			t.Errorf("Unit(%d) = %s/%s tier %d, want %s/%s tier %d", tt.qty, one, mon, tr, tt.one, tt.mon, tt.tier)
		}
	}
	// Without tiers the list prices apply to every quantity.
	flat := Price{Currency: "EUR", OneTime: decimal.RequireFromString("5"), MonthlyRecurring: decimal.Zero}
	if one, _, tr := flat.Unit(1000); one.String() != "5" || tr != 0 {
		t.Errorf("flat price: %s tier %d", one, tr)
	}
}

func TestPriceValidate(t *testing.T) {
	ok := Price{Currency: "EUR", Tiers: []Tier{tier(2, "1", "1"), tier(3, "0", "0")}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Price{
		"no currency":    {},
		"negative":       {Currency: "EUR", OneTime: decimal.RequireFromString("-1")},
		"tier at 1":      {Currency: "EUR", Tiers: []Tier{tier(1, "1", "1")}},
		"not ascending":  {Currency: "EUR", Tiers: []Tier{tier(10, "1", "1"), tier(10, "1", "1")}},
		"negative tier":  {Currency: "EUR", Tiers: []Tier{tier(10, "1", "-1")}},
		"descending min": {Currency: "EUR", Tiers: []Tier{tier(10, "1", "1"), tier(5, "1", "1")}},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, p)
		}
	}
	if err := Demo().Validate(); err != nil {
		t.Fatalf("demo catalog: %v", err)
	}
	dup := Demo()
	dup.Offerings = append(dup.Offerings, dup.Offerings[0])
	if err := dup.Validate(); err == nil {
		t.Fatal("duplicate offering accepted")
	}
}

func TestDemoHasTieredOfferings(t *testing.T) {
	n := 0
	for _, o := range Demo().Offerings {
		if p, ok := o.Price("EUR"); ok && len(p.Tiers) > 0 {
			n++
		}
	}
	if n < 2 {
		t.Fatalf("%d offerings have tiers, want at least 2", n)
	}
}

// A price written before tiers existed decodes and behaves as before, and a
// price without tiers encodes without the field.
func TestTierJSONBackwardCompatible(t *testing.T) {
	var p Price
	if err := json.Unmarshal([]byte(`{"currency":"EUR","oneTime":"10.00","monthlyRecurring":"1.50"}`), &p); err != nil {
		t.Fatal(err)
	}
	if one, mon, tr := p.Unit(500); one.String() != "10" || mon.String() != "1.5" || tr != 0 {
		t.Fatalf("old price: %s/%s tier %d", one, mon, tr)
	}
	b, _ := json.Marshal(p)
	if strings.Contains(string(b), "tiers") {
		t.Fatalf("untiered price encodes tiers: %s", b)
	}
	var q Price
	if err := json.Unmarshal([]byte(`{"currency":"EUR","oneTime":"10","monthlyRecurring":"1","tiers":[{"minQuantity":5,"oneTime":"9","monthlyRecurring":"0.9"}]}`), &q); err != nil {
		t.Fatal(err)
	}
	if one, _, tr := q.Unit(5); one.String() != "9" || tr != 5 {
		t.Fatalf("tiered price: %s tier %d", one, tr)
	}
}
