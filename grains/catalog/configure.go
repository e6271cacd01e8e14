package catalog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Configuration violation codes. They are part of the public API (quote
// submit returns them in validation_failed problems): never rename one.
const (
	CodeCharacteristicUnknown  = "characteristic_unknown"  // the offering has no such characteristic
	CodeCharacteristicRequired = "characteristic_required" // a required characteristic has no value and no default
	CodeValueNotAllowed        = "value_not_allowed"       // the value is not one of the enumerated values
	CodeValueOutOfRange        = "value_out_of_range"      // the number is below min or above max
	CodeValueType              = "value_type"              // the value has the wrong JSON type
	CodeBundleChildMissing     = "bundle_child_missing"    // fewer child units than the bundle's min
	CodeBundleChildExcess      = "bundle_child_excess"     // more child units than the bundle's max
	CodeBundleChildUnknown     = "bundle_child_unknown"    // the child offering is not in the bundle, or the parent line is no bundle line
	CodeOfferingRequires       = "offering_requires"       // a requires rule is not met
	CodeOfferingExcludes       = "offering_excludes"       // an excludes rule is broken
	CodeOfferingUnknown        = "offering_unknown"        // no such offering in the catalog
)

// ConfiguredLine is one quote line as configuration sees it.
type ConfiguredLine struct {
	LineID          string
	OfferingID      string
	Quantity        int
	Characteristics map[string]any // JSON scalars: string, float64, bool
	ParentLineID    string         // the bundle line this line belongs to; "" for top level
}

// Violation is one configuration problem located by a JSON pointer. Its
// fields match grains.Violation, so a conversion turns one into the other.
type Violation struct {
	Pointer string `json:"pointer"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Configure fills defaults into values for offeringID and checks them
// against its characteristics; pointers are relative to the line,
// e.g. "/characteristics/bandwidth".
//
// The result is a new map (values is not modified) holding every given
// value and the default of every characteristic without one; a nil value
// counts as absent. An unknown offering yields one offering_unknown
// violation at "/offeringId" and values unchanged.
func (c *Catalog) Configure(offeringID string, values map[string]any) (map[string]any, []Violation) {
	o, ok := c.Offering(offeringID)
	if !ok {
		return values, []Violation{{Pointer: "/offeringId", Code: CodeOfferingUnknown, Message: fmt.Sprintf("offering %q is not in catalog version %d", offeringID, c.version())}}
	}
	chars := c.CharacteristicsOf(o)
	out := make(map[string]any, len(chars)+len(values))
	var vs []Violation
	known := make(map[string]bool, len(chars))
	for _, ch := range chars {
		known[ch.Name] = true
		ptr := "/characteristics/" + escape(ch.Name)
		v, given := values[ch.Name]
		if !given || v == nil {
			if ch.Default == nil {
				if ch.Required {
					vs = append(vs, Violation{Pointer: ptr, Code: CodeCharacteristicRequired, Message: fmt.Sprintf("%s of %s is required", ch.Name, o.ID)})
				}
				continue
			}
			v = ch.Default
		}
		out[ch.Name] = v
		if code, msg := ch.check(v); code != "" {
			vs = append(vs, Violation{Pointer: ptr, Code: code, Message: msg})
		}
	}
	for name, v := range values {
		if known[name] {
			continue
		}
		if v != nil {
			out[name] = v
		}
		vs = append(vs, Violation{Pointer: "/characteristics/" + escape(name), Code: CodeCharacteristicUnknown, Message: fmt.Sprintf("%s has no characteristic %q", o.ID, name)})
	}
	sortViolations(vs)
	return out, vs
}

// CheckConfiguration checks the whole quote: every line's
// characteristics, bundle child cardinalities, requires/excludes; it
// returns ALL violations, pointers like "/lines/2/characteristics/x",
// "/lines/0" (index in the lines slice), sorted deterministically.
//
// The rules, with the pointer each violation carries:
//   - a line's offering must exist (offering_unknown, /lines/i/offeringId);
//     lines of unknown offerings are not checked further;
//   - a line's characteristics as Configure checks them (/lines/i/...);
//   - a line with a ParentLineID must name another line of a bundle that
//     has the line's offering as a child (bundle_child_unknown,
//     /lines/i/parentLineId);
//   - on a bundle line of quantity q, the quantities of its child lines of
//     each child offering add up to at least min*q and at most max*q
//     (bundle_child_missing, bundle_child_excess, /lines/i of the bundle);
//   - "A requires B": a quote with a line of A has a line of B anywhere
//     (offering_requires, /lines/i of each A line);
//   - "A excludes B": a quote with a line of A has no line of B
//     (offering_excludes, /lines/i of each A line).
//
// Violations are sorted by line index, then pointer, code and message.
func (c *Catalog) CheckConfiguration(lines []ConfiguredLine) []Violation {
	var vs []Violation
	at := func(i int) string { return "/lines/" + strconv.Itoa(i) }
	byID := make(map[string]int, len(lines))
	for i, l := range lines {
		if l.LineID != "" {
			if _, dup := byID[l.LineID]; !dup {
				byID[l.LineID] = i
			}
		}
	}
	present := map[string]bool{}
	known := make([]bool, len(lines))
	for i, l := range lines {
		if _, ok := c.Offering(l.OfferingID); !ok {
			vs = append(vs, Violation{Pointer: at(i) + "/offeringId", Code: CodeOfferingUnknown, Message: fmt.Sprintf("offering %q is not in catalog version %d", l.OfferingID, c.version())})
			continue
		}
		known[i] = true
		present[l.OfferingID] = true
		_, lvs := c.Configure(l.OfferingID, l.Characteristics)
		for _, v := range lvs {
			v.Pointer = at(i) + v.Pointer
			vs = append(vs, v)
		}
	}
	// Child quantities per bundle line and child offering.
	childQty := map[int]map[string]int{}
	for i, l := range lines {
		if !known[i] || l.ParentLineID == "" {
			continue
		}
		p, ok := byID[l.ParentLineID]
		if !ok || p == i {
			vs = append(vs, Violation{Pointer: at(i) + "/parentLineId", Code: CodeBundleChildUnknown, Message: fmt.Sprintf("line %s has no parent line %q", l.LineID, l.ParentLineID)})
			continue
		}
		parent, ok := c.Offering(lines[p].OfferingID)
		if !ok {
			continue // reported as offering_unknown on the parent
		}
		if !parent.IsBundle() {
			vs = append(vs, Violation{Pointer: at(i) + "/parentLineId", Code: CodeBundleChildUnknown, Message: fmt.Sprintf("parent line %s is %s, not a bundle", l.ParentLineID, parent.ID)})
			continue
		}
		if _, ok := parent.Child(l.OfferingID); !ok {
			vs = append(vs, Violation{Pointer: at(i) + "/parentLineId", Code: CodeBundleChildUnknown, Message: fmt.Sprintf("bundle %s has no child offering %s", parent.ID, l.OfferingID)})
			continue
		}
		if childQty[p] == nil {
			childQty[p] = map[string]int{}
		}
		childQty[p][l.OfferingID] += l.Quantity
	}
	for i, l := range lines {
		if !known[i] {
			continue
		}
		o, _ := c.Offering(l.OfferingID)
		q := l.Quantity
		if q < 1 {
			q = 1
		}
		for _, b := range o.Bundle {
			n := childQty[i][b.OfferingID]
			switch {
			case n < b.Min*q:
				vs = append(vs, Violation{Pointer: at(i), Code: CodeBundleChildMissing, Message: fmt.Sprintf("bundle %s x%d needs at least %d of %s, has %d", o.ID, q, b.Min*q, b.OfferingID, n)})
			case n > b.Max*q:
				vs = append(vs, Violation{Pointer: at(i), Code: CodeBundleChildExcess, Message: fmt.Sprintf("bundle %s x%d allows at most %d of %s, has %d", o.ID, q, b.Max*q, b.OfferingID, n)})
			}
		}
		for _, r := range c.Rules {
			if r.OfferingID != l.OfferingID {
				continue
			}
			switch {
			case r.Kind == RuleRequires && !present[r.TargetID]:
				vs = append(vs, Violation{Pointer: at(i), Code: CodeOfferingRequires, Message: fmt.Sprintf("%s requires %s in the same quote", r.OfferingID, r.TargetID)})
			case r.Kind == RuleExcludes && present[r.TargetID]:
				vs = append(vs, Violation{Pointer: at(i), Code: CodeOfferingExcludes, Message: fmt.Sprintf("%s excludes %s in the same quote", r.OfferingID, r.TargetID)})
			}
		}
	}
	sortViolations(vs)
	return vs
}

func (c *Catalog) version() int {
	if c == nil {
		return 0
	}
	return c.Version
}

// sortViolations orders violations by the line index their pointer starts
// with (numerically), then pointer, code and message.
func sortViolations(vs []Violation) {
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := vs[i], vs[j]
		if ia, ib := lineIndex(a.Pointer), lineIndex(b.Pointer); ia != ib {
			return ia < ib
		}
		if a.Pointer != b.Pointer {
			return a.Pointer < b.Pointer
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
}

// lineIndex returns i of a pointer "/lines/i..." or -1.
func lineIndex(p string) int {
	rest, ok := strings.CutPrefix(p, "/lines/")
	if !ok {
		return -1
	}
	if k := strings.IndexByte(rest, '/'); k >= 0 {
		rest = rest[:k]
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return n
}

// escape encodes a name as one JSON pointer token (RFC 6901).
func escape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
