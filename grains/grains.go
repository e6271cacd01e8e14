// Package grains holds the domain of Grainline: the quote and order state
// machines and what they share. Everything below grains/ is pure: no I/O, no
// clocks, no randomness. The runtime in actors/ passes time and identity in
// through Env.
package grains

import (
	"time"

	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
)

// TenantID names a tenant. Every aggregate, key and message is scoped by one.
type TenantID string

// QuoteID identifies a quote within its tenant.
type QuoteID string

// OrderID identifies an order within its tenant.
type OrderID string

// Kind names a grain kind ("quote", "order").
type Kind string

// The grain kinds.
const (
	KindQuote Kind = "quote"
	KindOrder Kind = "order"
)

// Env is what a decision may know besides the state and the command: who
// asks, with which roles, and what time it is. The runtime fills it in.
type Env struct {
	Tenant        TenantID
	ID            string   // the aggregate's id within the tenant, from the grain identity
	Actor         string   // subject of the caller's token, or a system name
	Roles         []string // roles from the caller's token
	Now           time.Time
	CorrelationID string
	// Catalog is the tenant's current published catalog; nil for kinds that
	// do not need one.
	Catalog *catalog.Catalog
	// Policy is the tenant's approval policy in force; nil for kinds that do
	// not need one, and for tenants without one (see package quote for what
	// submit does then).
	Policy *approval.Policy
}

// HasRole reports whether the caller holds role.
func (e Env) HasRole(role string) bool {
	for _, r := range e.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Command is a decoded request to change one aggregate.
type Command interface {
	// CommandName is the stable wire name, e.g. "addLine".
	CommandName() string
}

// Event is a fact an aggregate decided. Events are JSON-encodable values.
type Event interface {
	// EventName is the stable wire name, e.g. "QuoteAccepted".
	EventName() string
}
