package plan

import (
	"fmt"
	"sort"
)

// Catalog is the set of plan versions a deployment knows, and the one new
// orders pin by default.
type Catalog struct {
	// Default is the version an order pins when it names none.
	Default int `json:"default" yaml:"default"`
	// Plans are the known versions, each Version unique.
	Plans []Plan `json:"plans" yaml:"plans"`
}

// Builtin returns the plan versions Grainline ships, with DefaultVersion as
// the default. Each call returns a fresh value the caller may change.
func Builtin() Catalog {
	return Catalog{Default: DefaultVersion, Plans: []Plan{
		{
			Version:     V1,
			Description: "one provision task per order, covering every line",
			// Committed 5 days after acceptance, at risk a day before.
			LeadTimeSeconds:       5 * 24 * 3600,
			JeopardyMarginSeconds: 24 * 3600,
			Order:                 []TaskSpec{{Type: TypeProvision}},
		},
		{
			Version: V2,
			Description: "per line: reserve inventory, provision, activate billing (point of no return); " +
				"then one customer notification per order",
			// Committed 10 days after acceptance, at risk 2 days before.
			LeadTimeSeconds:       10 * 24 * 3600,
			JeopardyMarginSeconds: 2 * 24 * 3600,
			Default: []TaskSpec{
				{Type: TypeReserveInventory, Compensation: CompensationReleaseReservation},
				{Type: TypeProvision, DependsOn: []string{TypeReserveInventory}, Compensation: CompensationDeprovision},
				{Type: TypeActivateBilling, DependsOn: []string{TypeProvision}, PointOfNoReturn: true, Compensation: CompensationDeactivateBilling},
			},
			Offerings: map[string][]TaskSpec{
				// A licence has nothing in stock to reserve.
				"sdwan-license": {
					{Type: TypeProvision, Compensation: CompensationDeprovision},
					{Type: TypeActivateBilling, DependsOn: []string{TypeProvision}, PointOfNoReturn: true, Compensation: CompensationDeactivateBilling},
				},
			},
			Order: []TaskSpec{{Type: TypeNotify, DependsOn: []string{TypeActivateBilling}}},
		},
	}}
}

// Validate checks every plan (see Plan.Validate), that versions are unique
// and that Default names one of them.
func (c Catalog) Validate() error {
	seen := map[int]bool{}
	for _, p := range c.Plans {
		if err := p.Validate(); err != nil {
			return err
		}
		if seen[p.Version] {
			return fmt.Errorf("%w: version %d is declared twice", ErrInvalidPlan, p.Version)
		}
		seen[p.Version] = true
	}
	if !seen[c.Default] {
		return fmt.Errorf("%w: default version %d is not in the catalog", ErrUnknownVersion, c.Default)
	}
	return nil
}

// Plan returns the plan with version.
func (c Catalog) Plan(version int) (Plan, bool) {
	for _, p := range c.Plans {
		if p.Version == version {
			return p, true
		}
	}
	return Plan{}, false
}

// Versions returns the known versions in ascending order.
func (c Catalog) Versions() []int {
	vs := make([]int, 0, len(c.Plans))
	for _, p := range c.Plans {
		vs = append(vs, p.Version)
	}
	sort.Ints(vs)
	return vs
}
