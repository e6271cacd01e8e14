// Package catalog describes what a tenant sells: a versioned, published list
// of offerings with their prices per currency. It is plain data; pricing and
// the quote grain read it, nothing here does I/O.
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
}

// Offering is one thing a tenant sells.
type Offering struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Kind        string  `json:"kind"` // KindProduct or KindService
	Unit        string  `json:"unit"` // e.g. "device", "site", "circuit"
	Prices      []Price `json:"prices"`
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

// Validate checks every offering's prices and that offering ids are unique.
func (c *Catalog) Validate() error {
	if c == nil {
		return fmt.Errorf("catalog: nil")
	}
	seen := make(map[string]bool, len(c.Offerings))
	for i, o := range c.Offerings {
		if o.ID == "" || seen[o.ID] {
			return fmt.Errorf("catalog: offering %d: id %q is empty or repeated", i, o.ID)
		}
		seen[o.ID] = true
		for _, p := range o.Prices {
			if err := p.Validate(); err != nil {
				return fmt.Errorf("offering %s: %w", o.ID, err)
			}
		}
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
// the site license. Each call returns a fresh value.
func Demo() *Catalog {
	p := func(cur, oneTime, monthly string, tiers ...Tier) Price {
		return Price{Currency: cur, OneTime: decimal.RequireFromString(oneTime), MonthlyRecurring: decimal.RequireFromString(monthly), Tiers: tiers}
	}
	return &Catalog{
		Version:  1,
		Currency: "EUR",
		Offerings: []Offering{
			{
				ID:          "sdwan-edge-m",
				Name:        "Managed SD-WAN edge device (M)",
				Description: "Branch edge appliance with 4x1GE, LTE backup, zero-touch provisioning; hardware sold outright, management billed monthly.",
				Kind:        KindProduct,
				Unit:        "device",
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
		},
	}
}
