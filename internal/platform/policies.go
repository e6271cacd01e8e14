package platform

import (
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
)

// policies serves tenants' approval policies. For now they are hard-wired:
// the demo tenant has approval.Demo() (version 1), every other tenant none,
// which the quote treats as one approval at level 1. Versioned, published
// policies kept in the truth store come later; a quote pins the version it
// was submitted under, so publishing one will not touch quotes in flight.
type policies struct {
	byTenant map[grains.TenantID]*approval.Policy
}

func newPolicies() policies {
	return policies{byTenant: map[grains.TenantID]*approval.Policy{DemoTenant: approval.Demo()}}
}

// For returns tenant's approval policy, nil when it has none. The map is
// never written after newPolicies, so For is safe for concurrent use.
func (p policies) For(tenant grains.TenantID) *approval.Policy { return p.byTenant[tenant] }
