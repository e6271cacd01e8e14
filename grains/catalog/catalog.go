// Package catalog describes what a tenant sells: a versioned, published list
// of offerings with their prices per currency. It is plain data; pricing and
// the quote grain read it, nothing here does I/O.
package catalog

import "github.com/shopspring/decimal"

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
type Price struct {
	Currency         string          `json:"currency"`
	OneTime          decimal.Decimal `json:"oneTime"`
	MonthlyRecurring decimal.Decimal `json:"monthlyRecurring"`
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
// portfolio priced in EUR and USD. Each call returns a fresh value.
func Demo() *Catalog {
	p := func(cur, oneTime, monthly string) Price {
		return Price{Currency: cur, OneTime: decimal.RequireFromString(oneTime), MonthlyRecurring: decimal.RequireFromString(monthly)}
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
				Prices:      []Price{p("EUR", "1450.00", "35.00"), p("USD", "1590.00", "39.00")},
			},
			{
				ID:          "sdwan-license",
				Name:        "SD-WAN site license",
				Description: "Per-site SD-WAN software license with application-aware routing and central orchestration.",
				Kind:        KindService,
				Unit:        "site",
				Prices:      []Price{p("EUR", "0", "89.90"), p("USD", "0", "99.00")},
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
