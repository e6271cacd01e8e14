package catalog

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDemoIsConsistent(t *testing.T) {
	c := Demo()
	if c.Version < 1 {
		t.Fatalf("version %d, want >= 1", c.Version)
	}
	seen := map[string]bool{}
	for _, o := range c.Offerings {
		if o.ID == "" || o.Name == "" || o.Unit == "" {
			t.Errorf("offering %+v lacks id, name or unit", o)
		}
		if seen[o.ID] {
			t.Errorf("duplicate offering id %q", o.ID)
		}
		seen[o.ID] = true
		if o.Kind != KindProduct && o.Kind != KindService {
			t.Errorf("offering %s: kind %q", o.ID, o.Kind)
		}
		for _, cur := range []string{"EUR", "USD"} {
			p, ok := o.Price(cur)
			if !ok {
				t.Errorf("offering %s has no %s price", o.ID, cur)
				continue
			}
			if p.OneTime.IsNegative() || p.MonthlyRecurring.IsNegative() {
				t.Errorf("offering %s: negative %s price", o.ID, cur)
			}
			if p.OneTime.IsZero() && p.MonthlyRecurring.IsZero() && !o.IsBundle() {
				t.Errorf("offering %s: %s price is all zero", o.ID, cur)
			}
		}
	}
	if !c.Sells("EUR") || !c.Sells("USD") || c.Sells("JPY") {
		t.Errorf("Sells: EUR=%v USD=%v JPY=%v", c.Sells("EUR"), c.Sells("USD"), c.Sells("JPY"))
	}
}

func TestOfferingLookup(t *testing.T) {
	c := Demo()
	o, ok := c.Offering("dia-1g")
	if !ok || o.ID != "dia-1g" {
		t.Fatalf("Offering(dia-1g) = %+v, %v", o, ok)
	}
	if _, ok := c.Offering("nope"); ok {
		t.Fatal("Offering(nope) found")
	}
	var nilCat *Catalog
	if _, ok := nilCat.Offering("dia-1g"); ok {
		t.Fatal("nil catalog found an offering")
	}
	// Demo returns independent values.
	c.Offerings[0].Name = "changed"
	if Demo().Offerings[0].Name == "changed" {
		t.Fatal("Demo shares state between calls")
	}
}

func TestJSONShape(t *testing.T) {
	b, err := json.Marshal(Demo())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"offerings":`, `"monthlyRecurring":"89.9"`, `"oneTime":"1450"`, `"currency":"EUR"`} {
		if !strings.Contains(s, want) {
			t.Errorf("catalog JSON lacks %s", want)
		}
	}
	var back Catalog
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	o, _ := back.Offering("sdwan-license")
	p, _ := o.Price("EUR")
	if p.MonthlyRecurring.String() != "89.9" {
		t.Fatalf("round trip monthly = %s", p.MonthlyRecurring)
	}
}
