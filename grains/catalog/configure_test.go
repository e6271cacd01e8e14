package catalog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func codes(vs []Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Pointer + " " + v.Code
	}
	return out
}

func TestConfigure(t *testing.T) {
	for _, tt := range []struct {
		name     string
		offering string
		values   map[string]any
		want     map[string]any
		errs     []string
	}{
		{"defaults filled", "dia-1g", nil,
			map[string]any{"bandwidth": "1G", "sla": "standard", "ipv4Block": float64(29)}, nil},
		{"given values kept", "dia-1g", map[string]any{"bandwidth": "500M", "sla": "premium", "ipv4Block": float64(28)},
			map[string]any{"bandwidth": "500M", "sla": "premium", "ipv4Block": float64(28)}, nil},
		{"nil is absent", "dia-1g", map[string]any{"bandwidth": nil},
			map[string]any{"bandwidth": "1G", "sla": "standard", "ipv4Block": float64(29)}, nil},
		{"int accepted as number", "sdwan-edge-m", map[string]any{"wanPorts": 4},
			map[string]any{"wanPorts": 4, "lteBackup": true}, nil},
		{"value not allowed", "dia-1g", map[string]any{"bandwidth": "10G"}, nil,
			[]string{"/characteristics/bandwidth value_not_allowed"}},
		{"value type string", "dia-1g", map[string]any{"sla": float64(1)}, nil,
			[]string{"/characteristics/sla value_type"}},
		{"value type number", "sdwan-edge-m", map[string]any{"wanPorts": "2"}, nil,
			[]string{"/characteristics/wanPorts value_type"}},
		{"value type boolean", "sdwan-edge-m", map[string]any{"lteBackup": "yes"}, nil,
			[]string{"/characteristics/lteBackup value_type"}},
		{"below min", "sdwan-edge-m", map[string]any{"wanPorts": float64(0)}, nil,
			[]string{"/characteristics/wanPorts value_out_of_range"}},
		{"above max", "dia-1g", map[string]any{"ipv4Block": float64(31)}, nil,
			[]string{"/characteristics/ipv4Block value_out_of_range"}},
		{"unknown characteristic", "install-onsite", map[string]any{"colour": "red"}, nil,
			[]string{"/characteristics/colour characteristic_unknown"}},
		{"unknown name escaped", "install-onsite", map[string]any{"a/b": "x"}, nil,
			[]string{"/characteristics/a~1b characteristic_unknown"}},
		{"all problems, sorted", "dia-1g", map[string]any{"zeta": 1, "sla": "gold", "bandwidth": true, "ipv4Block": float64(26)}, nil,
			[]string{"/characteristics/bandwidth value_type", "/characteristics/ipv4Block value_out_of_range", "/characteristics/sla value_not_allowed", "/characteristics/zeta characteristic_unknown"}},
		{"unknown offering", "nope", map[string]any{"x": 1}, nil,
			[]string{"/offeringId offering_unknown"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := map[string]any{}
			for k, v := range tt.values {
				in[k] = v
			}
			got, vs := Demo().Configure(tt.offering, tt.values)
			if !reflect.DeepEqual(codes(vs), nonNil(tt.errs)) {
				t.Fatalf("violations %q, want %q", codes(vs), tt.errs)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("values %v, want %v", got, tt.want)
			}
			if len(tt.values) > 0 && !reflect.DeepEqual(in, tt.values) {
				t.Fatalf("Configure changed its input: %v", tt.values)
			}
			for _, v := range vs {
				if v.Message == "" {
					t.Errorf("violation %s without message", v.Code)
				}
			}
		})
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// A required characteristic without default needs a value.
func TestConfigureRequiredWithoutDefault(t *testing.T) {
	c := Demo()
	c.Specs[0].Characteristics[0].Default = nil
	_, vs := c.Configure("dia-1g", nil)
	if got := codes(vs); !reflect.DeepEqual(got, []string{"/characteristics/bandwidth characteristic_required"}) {
		t.Fatalf("got %q", got)
	}
	// Optional without default stays absent.
	c.Specs[0].Characteristics[0].Required = false
	out, vs := c.Configure("dia-1g", nil)
	if len(vs) != 0 {
		t.Fatalf("optional: %q", codes(vs))
	}
	if _, ok := out["bandwidth"]; ok {
		t.Fatal("optional characteristic without default was filled")
	}
}

func TestCheckConfiguration(t *testing.T) {
	line := func(id, offering string, qty int, parent string) ConfiguredLine {
		return ConfiguredLine{LineID: id, OfferingID: offering, Quantity: qty, ParentLineID: parent}
	}
	withChars := func(l ConfiguredLine, chars map[string]any) ConfiguredLine {
		l.Characteristics = chars
		return l
	}
	for _, tt := range []struct {
		name  string
		lines []ConfiguredLine
		want  []string
	}{
		{"empty quote", nil, nil},
		{"simple lines with defaults", []ConfiguredLine{line("1", "dia-1g", 1, ""), line("2", "sdwan-edge-m", 2, "")}, nil},
		{"complete bundle", []ConfiguredLine{line("1", "branch-bundle", 1, ""), line("2", "sdwan-edge-m", 1, "1"), line("3", "sdwan-license", 1, "1"), line("4", "install-onsite", 1, "1")}, nil},
		{"bundle of 3 scales cardinality", []ConfiguredLine{line("1", "branch-bundle", 3, ""), line("2", "sdwan-edge-m", 3, "1"), line("3", "sdwan-license", 2, "1"), line("4", "sdwan-license", 1, "1")}, nil},
		{"bundle child missing", []ConfiguredLine{line("1", "branch-bundle", 1, ""), line("2", "sdwan-edge-m", 1, "1")},
			[]string{"/lines/0 bundle_child_missing"}},
		{"bundle child missing for quantity", []ConfiguredLine{line("1", "branch-bundle", 2, ""), line("2", "sdwan-edge-m", 1, "1"), line("3", "sdwan-license", 2, "1")},
			[]string{"/lines/0 bundle_child_missing"}},
		{"bundle child excess", []ConfiguredLine{line("1", "branch-bundle", 1, ""), line("2", "sdwan-edge-m", 1, "1"), line("3", "sdwan-license", 1, "1"), line("4", "install-onsite", 2, "1")},
			[]string{"/lines/0 bundle_child_excess"}},
		{"bundle child not in bundle", []ConfiguredLine{line("1", "branch-bundle", 1, ""), line("2", "sdwan-edge-m", 1, "1"), line("3", "sdwan-license", 1, "1"), line("4", "dia-1g", 1, "1")},
			[]string{"/lines/3/parentLineId bundle_child_unknown"}},
		{"parent is not a bundle", []ConfiguredLine{line("1", "dia-1g", 1, ""), line("2", "install-onsite", 1, "1")},
			[]string{"/lines/1/parentLineId bundle_child_unknown"}},
		{"parent line missing", []ConfiguredLine{line("1", "install-onsite", 1, "9")},
			[]string{"/lines/0/parentLineId bundle_child_unknown"}},
		{"own parent", []ConfiguredLine{line("1", "install-onsite", 1, "1")},
			[]string{"/lines/0/parentLineId bundle_child_unknown"}},
		{"requires met", []ConfiguredLine{line("1", "sdwan-security", 1, ""), line("2", "sdwan-license", 1, "")}, nil},
		{"requires met inside a bundle", []ConfiguredLine{line("1", "branch-bundle", 1, ""), line("2", "sdwan-edge-m", 1, "1"), line("3", "sdwan-license", 1, "1"), line("4", "sdwan-security", 1, "")}, nil},
		{"requires broken", []ConfiguredLine{line("1", "dia-1g", 1, ""), line("2", "sdwan-security", 1, ""), line("3", "sdwan-security", 1, "")},
			[]string{"/lines/1 offering_requires", "/lines/2 offering_requires"}},
		{"excludes broken", []ConfiguredLine{line("1", "support-premium", 1, ""), line("2", "support-basic", 1, "")},
			[]string{"/lines/1 offering_excludes"}},
		{"excludes alone fine", []ConfiguredLine{line("1", "support-basic", 1, "")}, nil},
		{"unknown offering", []ConfiguredLine{line("1", "dia-1g", 1, ""), withChars(line("2", "nope", 1, ""), map[string]any{"x": 1})},
			[]string{"/lines/1/offeringId offering_unknown"}},
		{"characteristics per line", []ConfiguredLine{withChars(line("1", "dia-1g", 1, ""), map[string]any{"bandwidth": "9G"}), line("2", "dia-1g", 1, ""), withChars(line("3", "sdwan-edge-m", 1, ""), map[string]any{"wanPorts": float64(9), "x": 1})},
			[]string{"/lines/0/characteristics/bandwidth value_not_allowed", "/lines/2/characteristics/wanPorts value_out_of_range", "/lines/2/characteristics/x characteristic_unknown"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vs := Demo().CheckConfiguration(tt.lines)
			if !reflect.DeepEqual(codes(vs), nonNil(tt.want)) {
				t.Fatalf("got %q, want %q", codes(vs), tt.want)
			}
		})
	}
}

// Every problem of a quote is reported at once, sorted by line index
// numerically, whatever order the lines come in.
func TestCheckConfigurationAllSorted(t *testing.T) {
	var lines []ConfiguredLine
	for i := 0; i < 12; i++ {
		lines = append(lines, ConfiguredLine{LineID: fmt.Sprint(i), OfferingID: "dia-1g", Quantity: 1, Characteristics: map[string]any{"sla": "gold", "bandwidth": "9G"}})
	}
	lines = append(lines, ConfiguredLine{LineID: "b", OfferingID: "branch-bundle", Quantity: 1}, ConfiguredLine{LineID: "s", OfferingID: "support-basic", Quantity: 1}, ConfiguredLine{LineID: "p", OfferingID: "support-premium", Quantity: 1})
	vs := Demo().CheckConfiguration(lines)
	if len(vs) != 12*2+2+1 {
		t.Fatalf("%d violations: %q", len(vs), codes(vs))
	}
	for i := 1; i < len(vs); i++ {
		a, b := lineIndex(vs[i-1].Pointer), lineIndex(vs[i].Pointer)
		if a > b || (a == b && vs[i-1].Pointer > vs[i].Pointer) {
			t.Fatalf("not sorted at %d: %q", i, codes(vs))
		}
	}
	if vs[len(vs)-1].Pointer != "/lines/13" || vs[len(vs)-1].Code != CodeOfferingExcludes {
		t.Fatalf("last = %+v", vs[len(vs)-1])
	}
	again := Demo().CheckConfiguration(lines)
	if !reflect.DeepEqual(vs, again) {
		t.Fatal("not deterministic")
	}
}

// Violations survive JSON with the field names grains.Violation uses.
func TestViolationJSON(t *testing.T) {
	b, _ := json.Marshal(Violation{Pointer: "/lines/0", Code: CodeOfferingRequires, Message: "m"})
	if string(b) != `{"pointer":"/lines/0","code":"offering_requires","message":"m"}` {
		t.Fatalf("%s", b)
	}
}

func TestDemoConfigurationFeatures(t *testing.T) {
	c := Demo()
	b, ok := c.Offering("branch-bundle")
	if !ok || !b.IsBundle() || len(b.Bundle) != 3 {
		t.Fatalf("branch-bundle: %+v", b)
	}
	kinds := map[string]bool{}
	for _, r := range c.Rules {
		kinds[r.Kind] = true
	}
	if !kinds[RuleRequires] || !kinds[RuleExcludes] {
		t.Fatalf("rules %+v", c.Rules)
	}
	dia, _ := c.Offering("dia-1g")
	if names := c.CharacteristicsOf(dia); len(names) < 2 {
		t.Fatalf("dia-1g characteristics %+v", names)
	}
	s, _ := json.Marshal(c)
	var back Catalog
	if err := json.Unmarshal(s, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("round-tripped demo: %v", err)
	}
	// Defaults and bounds survive JSON as float64.
	if _, vs := back.Configure("dia-1g", map[string]any{"ipv4Block": float64(29)}); len(vs) != 0 {
		t.Fatalf("round-tripped configure: %q", codes(vs))
	}
	if !strings.Contains(string(s), `"bundle":[`) || !strings.Contains(string(s), `"specifications":[`) {
		t.Fatalf("demo JSON: %s", s)
	}
}
