package catalog

import (
	"errors"
	"reflect"
	"testing"

	"github.com/shopspring/decimal"
)

func TestProblems(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tt := range []struct {
		name   string
		change func(c *Catalog)
		want   []string
	}{
		{"demo is valid", func(c *Catalog) {}, nil},
		{"no currency", func(c *Catalog) { c.Currency = "" }, []string{"/currency required"}},
		{"empty offering id", func(c *Catalog) { c.Offerings[2].ID = "" }, []string{"/offerings/2/id required"}},
		{"repeated offering", func(c *Catalog) { c.Offerings[2].ID = c.Offerings[0].ID },
			[]string{"/offerings/2/id duplicate"}},
		{"no name, bad kind", func(c *Catalog) { c.Offerings[0].Name = ""; c.Offerings[0].Kind = "x" },
			[]string{"/offerings/0/name required", "/offerings/0/kind invalid"}},
		{"price without currency", func(c *Catalog) { c.Offerings[0].Prices[1].Currency = "" },
			[]string{"/offerings/0/prices/1/currency required"}},
		{"repeated currency", func(c *Catalog) { c.Offerings[0].Prices[1].Currency = "EUR" },
			[]string{"/offerings/0/prices/1/currency duplicate"}},
		{"negative price", func(c *Catalog) { c.Offerings[2].Prices[0].MonthlyRecurring = decimal.RequireFromString("-1") },
			[]string{"/offerings/2/prices/0/monthlyRecurring invalid"}},
		{"tiers out of order", func(c *Catalog) { c.Offerings[0].Prices[0].Tiers[1].MinQuantity = 5 },
			[]string{"/offerings/0/prices/0/tiers/1/minQuantity invalid"}},
		{"unknown spec", func(c *Catalog) { c.Offerings[2].SpecID = "nope" },
			[]string{"/offerings/2/specId reference_unknown"}},
		{"spec id repeated", func(c *Catalog) { c.Specs = append(c.Specs, c.Specs[0]) },
			[]string{"/specifications/1/id duplicate"}},
		{"characteristic name repeated with spec", func(c *Catalog) {
			c.Offerings[2].Characteristics = []Characteristic{{Name: "sla", ValueType: ValueString}}
		}, []string{"/offerings/2/characteristics/0/name duplicate"}},
		{"bad characteristic definitions", func(c *Catalog) {
			c.Offerings[3].Characteristics = []Characteristic{
				{Name: "", ValueType: ValueString},
				{Name: "a", ValueType: "date"},
				{Name: "b", ValueType: ValueString, Min: f(1)},
				{Name: "c", ValueType: ValueNumber, Min: f(5), Max: f(1)},
				{Name: "d", ValueType: ValueString, Values: []any{"x", float64(1), "x"}},
				{Name: "e", ValueType: ValueString, Values: []any{"x"}, Default: "y"},
				{Name: "e", ValueType: ValueBoolean},
			}
		}, []string{
			"/offerings/3/characteristics/0/name required",
			"/offerings/3/characteristics/1/valueType invalid",
			"/offerings/3/characteristics/2 invalid",
			"/offerings/3/characteristics/3/max invalid",
			"/offerings/3/characteristics/4/values/1 invalid",
			"/offerings/3/characteristics/4/values/2 invalid",
			"/offerings/3/characteristics/5/default invalid",
			"/offerings/3/characteristics/6/name duplicate",
		}},
		{"bundle child unknown", func(c *Catalog) { c.Offerings[7].Bundle[0].OfferingID = "nope" },
			[]string{"/offerings/7/bundle/0/offeringId reference_unknown"}},
		{"bundle child repeated", func(c *Catalog) { c.Offerings[7].Bundle[1].OfferingID = "sdwan-edge-m" },
			[]string{"/offerings/7/bundle/1/offeringId duplicate"}},
		{"bundle cardinality", func(c *Catalog) {
			c.Offerings[7].Bundle[0].Min = 2
			c.Offerings[7].Bundle[1].Max = 0
			c.Offerings[7].Bundle[2].Min = -1
		}, []string{"/offerings/7/bundle/0 invalid", "/offerings/7/bundle/1 invalid", "/offerings/7/bundle/2 invalid"}},
		{"bundle contains itself", func(c *Catalog) {
			c.Offerings[7].Bundle = append(c.Offerings[7].Bundle, BundleChild{OfferingID: "branch-bundle", Min: 0, Max: 1})
		}, []string{"/offerings/7/bundle/3/offeringId bundle_cycle"}},
		{"bundle cycle through a child", func(c *Catalog) {
			c.Offerings[3].Bundle = []BundleChild{{OfferingID: "branch-bundle", Min: 0, Max: 1}}
		}, []string{"/offerings/3/bundle bundle_cycle", "/offerings/7/bundle bundle_cycle"}},
		{"rule kind and references", func(c *Catalog) {
			c.Rules = append(c.Rules, Rule{Kind: "prefers", OfferingID: "nope", TargetID: "gone"})
		}, []string{"/rules/2/kind invalid", "/rules/2/offeringId reference_unknown", "/rules/2/targetId reference_unknown"}},
		{"rule on itself", func(c *Catalog) {
			c.Rules = append(c.Rules, Rule{Kind: RuleRequires, OfferingID: "dia-1g", TargetID: "dia-1g"})
		}, []string{"/rules/2/targetId invalid"}},
		{"rule repeated", func(c *Catalog) { c.Rules = append(c.Rules, c.Rules[0]) }, []string{"/rules/2 duplicate"}},
		{"required and excluded", func(c *Catalog) {
			c.Rules = append(c.Rules, Rule{Kind: RuleExcludes, OfferingID: "sdwan-license", TargetID: "sdwan-security"})
		}, []string{"/rules/2 invalid"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Demo()
			if c.Offerings[7].ID != "branch-bundle" || c.Offerings[3].ID != "install-onsite" {
				t.Fatal("demo order changed; fix the indexes of this test")
			}
			tt.change(c)
			got := codes(c.Problems())
			if !reflect.DeepEqual(got, nonNil(tt.want)) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
			err := c.Validate()
			var ve *ValidationError
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.As(err, &ve) || len(ve.Violations) != len(tt.want) {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	var nilCat *Catalog
	if nilCat.Validate() == nil {
		t.Fatal("nil catalog is valid")
	}
}
