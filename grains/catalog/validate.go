package catalog

import (
	"fmt"

	"strings"
)

// Codes of problems with a catalog's definition, reported by Problems.
const (
	CodeRequired  = "required"          // a field that must be set is empty
	CodeInvalid   = "invalid"           // a value is not acceptable
	CodeDuplicate = "duplicate"         // an id or name is repeated
	CodeReference = "reference_unknown" // an id names nothing in the catalog
	CodeCycle     = "bundle_cycle"      // a bundle contains itself
)

// ValidationError is the error Validate returns: every problem of the
// catalog, each located by a JSON pointer into the catalog document.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.Pointer + ": " + v.Message
	}
	return "catalog: " + strings.Join(msgs, "; ")
}

// Validate checks the whole catalog and returns a *ValidationError listing
// every problem Problems finds, or nil.
func (c *Catalog) Validate() error {
	if c == nil {
		return fmt.Errorf("catalog: nil")
	}
	if vs := c.Problems(); len(vs) > 0 {
		return &ValidationError{Violations: vs}
	}
	return nil
}

// Problems returns every problem of the catalog's definition, in document
// order, with pointers such as "/offerings/2/prices/0/tiers/1/minQuantity":
//   - a currency; offerings with a unique, non-empty id, a name and a kind
//     of product or service;
//   - prices with a currency (once per offering), no negative amount, and
//     tiers with strictly ascending minQuantity of at least 2;
//   - specifications with a unique id and characteristics with a unique
//     name, a known value type, enumerated values of that type, min <= max
//     (numbers only) and an allowed default;
//   - an offering's specId names a specification, and its own
//     characteristics do not repeat the specification's names;
//   - bundle children name another offering, once, with 0 <= min <= max
//     and max >= 1, and no bundle contains itself at any depth;
//   - rules of kind requires or excludes between two different, existing
//     offerings, not repeated, and no pair both required and excluded.
func (c *Catalog) Problems() []Violation {
	var vs []Violation
	add := func(pointer, code, msg string) {
		vs = append(vs, Violation{Pointer: pointer, Code: code, Message: msg})
	}
	if c == nil {
		add("", CodeRequired, "no catalog")
		return vs
	}
	if c.Currency == "" {
		add("/currency", CodeRequired, "the catalog needs a default currency")
	}
	specs := make(map[string]Spec, len(c.Specs))
	for i, s := range c.Specs {
		at := fmt.Sprintf("/specifications/%d", i)
		switch {
		case s.ID == "":
			add(at+"/id", CodeRequired, "a specification needs an id")
		case specs[s.ID].ID != "":
			add(at+"/id", CodeDuplicate, fmt.Sprintf("specification id %q is repeated", s.ID))
		default:
			specs[s.ID] = s
		}
		names := map[string]bool{}
		for j, ch := range s.Characteristics {
			cat := fmt.Sprintf("%s/characteristics/%d", at, j)
			ch.validate(cat, add)
			if ch.Name != "" && names[ch.Name] {
				add(cat+"/name", CodeDuplicate, fmt.Sprintf("characteristic %q is repeated", ch.Name))
			}
			names[ch.Name] = true
		}
	}
	ids := make(map[string]int, len(c.Offerings))
	for i, o := range c.Offerings {
		at := fmt.Sprintf("/offerings/%d", i)
		switch _, seen := ids[o.ID]; {
		case o.ID == "":
			add(at+"/id", CodeRequired, "an offering needs an id")
		case seen:
			add(at+"/id", CodeDuplicate, fmt.Sprintf("offering id %q is repeated", o.ID))
		default:
			ids[o.ID] = i
		}
		if o.Name == "" {
			add(at+"/name", CodeRequired, fmt.Sprintf("offering %q needs a name", o.ID))
		}
		if o.Kind != KindProduct && o.Kind != KindService {
			add(at+"/kind", CodeInvalid, fmt.Sprintf("kind %q is not product or service", o.Kind))
		}
		currencies := map[string]bool{}
		for j, p := range o.Prices {
			pat := fmt.Sprintf("%s/prices/%d", at, j)
			p.problems(pat, add)
			if p.Currency != "" && currencies[p.Currency] {
				add(pat+"/currency", CodeDuplicate, fmt.Sprintf("%s price is repeated", p.Currency))
			}
			currencies[p.Currency] = true
		}
		names := map[string]bool{}
		if o.SpecID != "" {
			if s, ok := specs[o.SpecID]; !ok {
				add(at+"/specId", CodeReference, fmt.Sprintf("specification %q does not exist", o.SpecID))
			} else {
				for _, ch := range s.Characteristics {
					names[ch.Name] = true
				}
			}
		}
		for j, ch := range o.Characteristics {
			cat := fmt.Sprintf("%s/characteristics/%d", at, j)
			ch.validate(cat, add)
			if ch.Name != "" && names[ch.Name] {
				add(cat+"/name", CodeDuplicate, fmt.Sprintf("characteristic %q is repeated", ch.Name))
			}
			names[ch.Name] = true
		}
	}
	for i, o := range c.Offerings {
		children := map[string]bool{}
		for j, b := range o.Bundle {
			at := fmt.Sprintf("/offerings/%d/bundle/%d", i, j)
			if _, ok := ids[b.OfferingID]; !ok {
				add(at+"/offeringId", CodeReference, fmt.Sprintf("child offering %q does not exist", b.OfferingID))
			} else if b.OfferingID == o.ID {
				add(at+"/offeringId", CodeCycle, fmt.Sprintf("bundle %q contains itself", o.ID))
			}
			if children[b.OfferingID] {
				add(at+"/offeringId", CodeDuplicate, fmt.Sprintf("child offering %q is repeated", b.OfferingID))
			}
			children[b.OfferingID] = true
			if b.Min < 0 || b.Max < 1 || b.Min > b.Max {
				add(at, CodeInvalid, fmt.Sprintf("cardinality %d..%d: need 0 <= min <= max and max >= 1", b.Min, b.Max))
			}
		}
	}
	for i, o := range c.Offerings {
		if len(o.Bundle) > 0 && c.containsItself(o.ID) && !c.directlyContains(o, o.ID) {
			add(fmt.Sprintf("/offerings/%d/bundle", i), CodeCycle, fmt.Sprintf("bundle %q contains itself through its children", o.ID))
		}
	}
	type pair struct{ a, b string }
	rules := map[string]map[pair]bool{}
	for i, r := range c.Rules {
		at := fmt.Sprintf("/rules/%d", i)
		if r.Kind != RuleRequires && r.Kind != RuleExcludes {
			add(at+"/kind", CodeInvalid, fmt.Sprintf("rule kind %q is not requires or excludes", r.Kind))
		}
		if _, ok := ids[r.OfferingID]; !ok {
			add(at+"/offeringId", CodeReference, fmt.Sprintf("offering %q does not exist", r.OfferingID))
		}
		if _, ok := ids[r.TargetID]; !ok {
			add(at+"/targetId", CodeReference, fmt.Sprintf("offering %q does not exist", r.TargetID))
		}
		if r.OfferingID == r.TargetID {
			add(at+"/targetId", CodeInvalid, "a rule needs two different offerings")
		}
		p := pair{r.OfferingID, r.TargetID}
		if rules[r.Kind][p] {
			add(at, CodeDuplicate, fmt.Sprintf("rule %s %s %s is repeated", r.OfferingID, r.Kind, r.TargetID))
		}
		if rules[r.Kind] == nil {
			rules[r.Kind] = map[pair]bool{}
		}
		rules[r.Kind][p] = true
		if (r.Kind == RuleRequires && (rules[RuleExcludes][p] || rules[RuleExcludes][pair{p.b, p.a}])) ||
			(r.Kind == RuleExcludes && (rules[RuleRequires][p] || rules[RuleRequires][pair{p.b, p.a}])) {
			add(at, CodeInvalid, fmt.Sprintf("%s and %s are both required and excluded", r.OfferingID, r.TargetID))
		}
	}
	return vs
}

func (c *Catalog) directlyContains(o Offering, id string) bool {
	_, ok := o.Child(id)
	return ok
}

// containsItself reports whether the bundle id reaches itself through its
// children at any depth.
func (c *Catalog) containsItself(id string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(cur string) bool {
		o, ok := c.Offering(cur)
		if !ok {
			return false
		}
		for _, b := range o.Bundle {
			if b.OfferingID == id {
				return true
			}
			if !seen[b.OfferingID] {
				seen[b.OfferingID] = true
				if walk(b.OfferingID) {
					return true
				}
			}
		}
		return false
	}
	return walk(id)
}

// problems appends the price's problems, located under at.
func (p Price) problems(at string, add func(pointer, code, msg string)) {
	if p.Currency == "" {
		add(at+"/currency", CodeRequired, "a price needs a currency")
	}
	if p.OneTime.IsNegative() {
		add(at+"/oneTime", CodeInvalid, "a price may not be negative")
	}
	if p.MonthlyRecurring.IsNegative() {
		add(at+"/monthlyRecurring", CodeInvalid, "a price may not be negative")
	}
	prev := 1
	for i, t := range p.Tiers {
		tat := fmt.Sprintf("%s/tiers/%d", at, i)
		if t.MinQuantity <= prev {
			add(tat+"/minQuantity", CodeInvalid, fmt.Sprintf("minQuantity %d must be above %d", t.MinQuantity, prev))
		}
		if t.OneTime.IsNegative() || t.MonthlyRecurring.IsNegative() {
			add(tat, CodeInvalid, "a tier price may not be negative")
		}
		if t.MinQuantity > prev {
			prev = t.MinQuantity
		}
	}
}
