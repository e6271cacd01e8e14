package quote_test

import (
	"errors"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/quote"
)

// TestConfigurationIsInThePriceHash: the same offering, quantity and price
// configured differently never prices to the same hash.
func TestConfigurationIsInThePriceHash(t *testing.T) {
	created := step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`)
	priced := func(chars string) quote.State {
		return step(t, step(t, created, "addLine", `{"offeringId":"dia-1g","quantity":1,"characteristics":`+chars+`}`), "price", `{}`)
	}
	a, b := priced(`{"bandwidth":"1G"}`), priced(`{"bandwidth":"500M"}`)
	if a.Price.OneTimeTotal != b.Price.OneTimeTotal || a.Price.MonthlyTotal != b.Price.MonthlyTotal {
		t.Fatalf("totals differ: %+v %+v", a.Price, b.Price)
	}
	if a.Price.Hash == b.Price.Hash {
		t.Fatal("two configurations share a price hash")
	}
	if c := priced(`{"bandwidth":"1G","sla":"standard","ipv4Block":29}`); c.Price.Hash != a.Price.Hash {
		t.Fatal("the defaults spelled out give another hash")
	}
	// A characteristics change clears the price; pricing again gives the
	// other configuration's hash.
	changed := step(t, a, "setCharacteristics", `{"lineId":"1","characteristics":{"bandwidth":"500M"}}`)
	if changed.Price != nil {
		t.Fatal("setCharacteristics kept the price")
	}
	if again := step(t, changed, "price", `{}`); again.Price.Hash != b.Price.Hash {
		t.Fatalf("hash %s, want %s", again.Price.Hash, b.Price.Hash)
	}
}

// TestSubmitChecksTheConfiguration: a catalog published between price and
// submit that the lines no longer satisfy stops the submission with every
// violation.
func TestSubmitChecksTheConfiguration(t *testing.T) {
	s := step(t, step(t, step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`),
		"addLine", `{"offeringId":"dia-1g","quantity":1}`), "price", `{}`)
	cat := catalog.Demo()
	cat.Version = 2
	cat.Rules = append(cat.Rules, catalog.Rule{Kind: catalog.RuleRequires, OfferingID: "dia-1g", TargetID: "install-onsite"})
	for i := range cat.Specs {
		for j := range cat.Specs[i].Characteristics {
			if cat.Specs[i].Characteristics[j].Name == "ipv4Block" {
				hi := float64(28)
				cat.Specs[i].Characteristics[j].Max = &hi
			}
		}
	}
	e := env("sales")
	e.Catalog = cat
	_, err := quote.Decide(s, mustDecode(t, "submit", `{}`), e)
	var de *grains.Error
	if !errors.As(err, &de) || de.Code != grains.CodeValidation || len(de.Violations) != 2 ||
		de.Violations[0].Pointer != "/lines/0" || de.Violations[0].Code != catalog.CodeOfferingRequires ||
		de.Violations[1].Pointer != "/lines/0/characteristics/ipv4Block" || de.Violations[1].Code != catalog.CodeValueOutOfRange {
		t.Fatalf("submit: %v (%+v)", err, de)
	}
	// Without a catalog the check is skipped (the runtime always passes one).
	e.Catalog = nil
	if _, err := quote.Decide(s, mustDecode(t, "submit", `{}`), e); err != nil {
		t.Fatalf("submit without catalog: %v", err)
	}
}

// TestCloneLinesCopiesCharacteristics: a new state never shares a line's
// characteristics with the old one.
func TestCloneLinesCopiesCharacteristics(t *testing.T) {
	old := step(t, step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`), "addLine", `{"offeringId":"dia-1g","quantity":1}`)
	next := step(t, old, "addLine", `{"offeringId":"dia-1g","quantity":1}`)
	next.Lines[0].Characteristics["bandwidth"] = "200M"
	if old.Lines[0].Characteristics["bandwidth"] != "1G" {
		t.Fatalf("old state changed: %v", old.Lines[0].Characteristics)
	}
}
