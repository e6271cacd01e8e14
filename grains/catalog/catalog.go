// Package catalog describes what a tenant sells: a versioned, published list
// of offerings with their prices per currency, the characteristics a buyer
// configures (from product specifications), bundles of offerings with child
// cardinalities, and compatibility rules between offerings. It is plain
// data with pure checks; pricing and the quote grain read it, nothing here
// does I/O.
package catalog

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Offering kinds.
const (
	KindProduct = "product"
	KindService = "service"
)

// Catalog is one published version of a tenant's catalog.
type Catalog struct {
	Version   int        `json:"version"`
	Currency  string     `json:"currency"` // the catalog's default currency
	Offerings []Offering `json:"offerings"`
	// Specs are the product specifications offerings reference by SpecID.
	Specs []Spec `json:"specifications,omitempty"`
	// Rules are the compatibility rules between offerings of one quote.
	Rules []Rule `json:"rules,omitempty"`
}

// Offering is one thing a tenant sells.
type Offering struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Kind        string  `json:"kind"` // KindProduct or KindService
	Unit        string  `json:"unit"` // e.g. "device", "site", "circuit"
	Prices      []Price `json:"prices"`
	// SpecID names the product specification whose characteristics the
	// offering has; "" for none.
	SpecID string `json:"specId,omitempty"`
	// Characteristics are the offering's own characteristics, in addition to
	// those of its specification (a name may not appear in both).
	Characteristics []Characteristic `json:"characteristics,omitempty"`
	// Bundle lists the child offerings of a bundle; an offering without
	// children is simple.
	Bundle []BundleChild `json:"bundle,omitempty"`
}

// BundleChild is one child offering of a bundle and how many units of it
// each unit of the bundle holds: at least Min, at most Max.
type BundleChild struct {
	OfferingID string `json:"offeringId"`
	Min        int    `json:"min"`
	Max        int    `json:"max"`
}

// IsBundle reports whether the offering is a bundle.
func (o Offering) IsBundle() bool { return len(o.Bundle) > 0 }

// Child returns the bundle child entry for offering id.
func (o Offering) Child(id string) (BundleChild, bool) {
	for _, b := range o.Bundle {
		if b.OfferingID == id {
			return b, true
		}
	}
	return BundleChild{}, false
}

// Rule kinds.
const (
	RuleRequires = "requires" // a quote with OfferingID must also have TargetID
	RuleExcludes = "excludes" // a quote with OfferingID must not have TargetID
)

// Rule is a compatibility rule between two offerings of one quote.
type Rule struct {
	Kind       string `json:"kind"` // RuleRequires or RuleExcludes
	OfferingID string `json:"offeringId"`
	TargetID   string `json:"targetId"`
}

// CharacteristicsOf returns the characteristics of the offering: its
// specification's, then its own. Unknown specifications contribute none.
func (c *Catalog) CharacteristicsOf(o Offering) []Characteristic {
	var out []Characteristic
	if o.SpecID != "" {
		if s, ok := c.Spec(o.SpecID); ok {
			out = append(out, s.Characteristics...)
		}
	}
	return append(out, o.Characteristics...)
}

// Spec returns the product specification with id.
func (c *Catalog) Spec(id string) (Spec, bool) {
	if c == nil {
		return Spec{}, false
	}
	for _, s := range c.Specs {
		if s.ID == id {
			return s, true
		}
	}
	return Spec{}, false
}

// Price is what one unit of an offering costs in one currency: a one-time
// charge and a monthly recurring charge, either of which may be zero.
//
// Tiers, when present, are volume tiers: a line of quantity q is priced, all
// units alike, at the unit prices of the tier with the highest MinQuantity
// not above q; below the first tier the list prices OneTime and
// MonthlyRecurring apply. A price without tiers behaves as the list prices
// alone.
type Price struct {
	Currency         string          `json:"currency"`
	OneTime          decimal.Decimal `json:"oneTime"`
	MonthlyRecurring decimal.Decimal `json:"monthlyRecurring"`
	Tiers            []Tier          `json:"tiers,omitempty"`
}

// Tier is one volume tier of a price: from MinQuantity units on, every unit
// of the line costs OneTime and MonthlyRecurring.
type Tier struct {
	MinQuantity      int             `json:"minQuantity"`
	OneTime          decimal.Decimal `json:"oneTime"`
	MonthlyRecurring decimal.Decimal `json:"monthlyRecurring"`
}

// Unit returns the unit prices that apply to quantity and the MinQuantity of
// the tier they come from (0 for the list prices).
func (p Price) Unit(quantity int) (oneTime, monthly decimal.Decimal, tier int) {
	oneTime, monthly = p.OneTime, p.MonthlyRecurring
	for _, t := range p.Tiers {
		if t.MinQuantity <= quantity && t.MinQuantity > tier {
			oneTime, monthly, tier = t.OneTime, t.MonthlyRecurring, t.MinQuantity
		}
	}
	return oneTime, monthly, tier
}

// Validate checks the price: a currency, no negative amounts, and tiers with
// strictly ascending MinQuantity of at least 2.
func (p Price) Validate() error {
	if p.Currency == "" {
		return fmt.Errorf("catalog: price without currency")
	}
	if p.OneTime.IsNegative() || p.MonthlyRecurring.IsNegative() {
		return fmt.Errorf("catalog: %s price is negative", p.Currency)
	}
	prev := 1
	for i, t := range p.Tiers {
		if t.MinQuantity <= prev {
			return fmt.Errorf("catalog: %s tier %d: minQuantity %d must be above %d", p.Currency, i, t.MinQuantity, prev)
		}
		if t.OneTime.IsNegative() || t.MonthlyRecurring.IsNegative() {
			return fmt.Errorf("catalog: %s tier %d: price is negative", p.Currency, i)
		}
		prev = t.MinQuantity
	}
	return nil
}

func tier(minQty int, oneTime, monthly string) Tier {
	return Tier{MinQuantity: minQty, OneTime: decimal.RequireFromString(oneTime), MonthlyRecurring: decimal.RequireFromString(monthly)}
}

// Offering returns the offering with id.
func (c *Catalog) Offering(id string) (Offering, bool) {
	if c == nil {
		return Offering{}, false
	}
	for _, o := range c.Offerings {
		if o.ID == id {
			return o, true
		}
	}
	return Offering{}, false
}

// Price returns the offering's price in currency.
func (o Offering) Price(currency string) (Price, bool) {
	for _, p := range o.Prices {
		if p.Currency == currency {
			return p, true
		}
	}
	return Price{}, false
}

// Sells reports whether at least one offering has a price in currency.
func (c *Catalog) Sells(currency string) bool {
	if c == nil {
		return false
	}
	for _, o := range c.Offerings {
		if _, ok := o.Price(currency); ok {
			return true
		}
	}
	return false
}

// Demo returns the catalog of the demo tenant: a small managed-network
// portfolio priced in EUR and USD, with volume tiers on the edge device and
// the site license, configurable bandwidth and SLA on the internet access
// and WAN ports on the edge device, the "branch-bundle" (edge device 1..1,
// site license 1..1, installation 0..1 per branch), a security add-on that
// requires the site license and basic support that excludes premium
// support. Each call returns a fresh value.
func Demo() *Catalog {
	p := func(cur, oneTime, monthly string, tiers ...Tier) Price {
		return Price{Currency: cur, OneTime: decimal.RequireFromString(oneTime), MonthlyRecurring: decimal.RequireFromString(monthly), Tiers: tiers}
	}
	num := func(f float64) *float64 { return &f }
	return &Catalog{
		Version:  1,
		Currency: "EUR",
		Specs: []Spec{
			{
				ID:   "access-circuit",
				Name: "Internet access circuit",
				Characteristics: []Characteristic{
					{Name: "bandwidth", Description: "Committed bandwidth of the circuit.", ValueType: ValueString,
						Values: []any{"200M", "500M", "1G"}, Required: true, Default: "1G"},
					{Name: "sla", Description: "Contract service level.", ValueType: ValueString,
						Values: []any{"standard", "premium", "critical"}, Required: true, Default: "standard"},
					{Name: "ipv4Block", Description: "Size of the public IPv4 block (prefix length).", ValueType: ValueNumber,
						Min: num(27), Max: num(30), Unit: "prefix", Default: float64(29)},
				},
			},
		},
		Offerings: []Offering{
			{
				ID:          "sdwan-edge-m",
				Name:        "Managed SD-WAN edge device (M)",
				Description: "Branch edge appliance with 4x1GE, LTE backup, zero-touch provisioning; hardware sold outright, management billed monthly.",
				Kind:        KindProduct,
				Unit:        "device",
				Characteristics: []Characteristic{
					{Name: "wanPorts", Description: "WAN ports to activate.", ValueType: ValueNumber, Min: num(1), Max: num(4), Unit: "port", Default: float64(2)},
					{Name: "lteBackup", Description: "Activate the LTE backup link.", ValueType: ValueBoolean, Default: true},
				},
				Prices: []Price{
					p("EUR", "1450.00", "35.00", tier(10, "1380.00", "33.00"), tier(50, "1290.00", "31.00")),
					p("USD", "1590.00", "39.00", tier(10, "1510.00", "37.00"), tier(50, "1415.00", "34.50")),
				},
			},
			{
				ID:          "sdwan-license",
				Name:        "SD-WAN site license",
				Description: "Per-site SD-WAN software license with application-aware routing and central orchestration.",
				Kind:        KindService,
				Unit:        "site",
				Prices: []Price{
					p("EUR", "0", "89.90", tier(25, "0", "79.90"), tier(100, "0", "69.90")),
					p("USD", "0", "99.00", tier(25, "0", "88.00"), tier(100, "0", "77.00")),
				},
			},
			{
				ID:          "dia-1g",
				Name:        "Dedicated internet access 1 Gbps",
				Description: "Symmetric 1 Gbps fibre internet access with SLA, /29 IPv4 and /56 IPv6.",
				Kind:        KindService,
				Unit:        "circuit",
				Prices:      []Price{p("EUR", "990.00", "649.00"), p("USD", "1090.00", "715.00")},
				SpecID:      "access-circuit",
			},
			{
				ID:          "install-onsite",
				Name:        "On-site installation",
				Description: "Engineer visit: rack, cable, commission and hand over one site.",
				Kind:        KindService,
				Unit:        "visit",
				Prices:      []Price{p("EUR", "380.00", "0"), p("USD", "420.00", "0")},
			},
			{
				ID:          "support-premium",
				Name:        "24x7 premium support",
				Description: "Round-the-clock support with 4-hour hardware replacement and a named service manager.",
				Kind:        KindService,
				Unit:        "site",
				Prices:      []Price{p("EUR", "0", "24.50"), p("USD", "0", "27.00")},
			},
			{
				ID:          "support-basic",
				Name:        "Business-hours support",
				Description: "Support on working days 8-18 with next-business-day hardware replacement.",
				Kind:        KindService,
				Unit:        "site",
				Prices:      []Price{p("EUR", "0", "9.90"), p("USD", "0", "11.00")},
			},
			{
				ID:          "sdwan-security",
				Name:        "SD-WAN security add-on",
				Description: "Next-generation firewall and URL filtering on the site's SD-WAN license.",
				Kind:        KindService,
				Unit:        "site",
				Prices:      []Price{p("EUR", "0", "19.90"), p("USD", "0", "22.00")},
			},
			{
				ID:          "branch-bundle",
				Name:        "Managed branch",
				Description: "One branch: an edge device and a site license, installation optional; priced by its parts.",
				Kind:        KindService,
				Unit:        "site",
				Prices:      []Price{p("EUR", "0", "0"), p("USD", "0", "0")},
				Bundle: []BundleChild{
					{OfferingID: "sdwan-edge-m", Min: 1, Max: 1},
					{OfferingID: "sdwan-license", Min: 1, Max: 1},
					{OfferingID: "install-onsite", Min: 0, Max: 1},
				},
			},
		},
		Rules: []Rule{
			{Kind: RuleRequires, OfferingID: "sdwan-security", TargetID: "sdwan-license"},
			{Kind: RuleExcludes, OfferingID: "support-basic", TargetID: "support-premium"},
		},
	}
}
