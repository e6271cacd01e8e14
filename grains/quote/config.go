package quote

import (
	"fmt"
	"reflect"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
)

// Bounds of a line's characteristics in a command.
const (
	MaxCharacteristics       = 64
	MaxCharacteristicName    = 64
	MaxCharacteristicTextLen = 256
)

// checkValues checks that values, a command's characteristics, are JSON
// scalars (string, number, boolean, or null for "absent") within bounds.
func checkValues(values map[string]any, v *grains.Violations) {
	if len(values) > MaxCharacteristics {
		v.Add("/characteristics", "max_items", fmt.Sprintf("at most %d characteristics", MaxCharacteristics))
		return
	}
	for name, val := range values {
		ptr := "/characteristics/" + escapePointer(name)
		if name == "" || len(name) > MaxCharacteristicName {
			v.Add(ptr, "name", fmt.Sprintf("a characteristic name has 1 to %d characters", MaxCharacteristicName))
			continue
		}
		switch x := val.(type) {
		case nil, bool, float64:
		case string:
			if len(x) > MaxCharacteristicTextLen {
				v.Add(ptr, "max_length", fmt.Sprintf("a characteristic value has at most %d characters", MaxCharacteristicTextLen))
			}
		default:
			v.Add(ptr, catalog.CodeValueType, "a characteristic value is a JSON string, number or boolean")
		}
	}
}

// configure fills the defaults into the values of a line of offering and
// checks them against the catalog; violations point into the command
// ("/characteristics/...").
func configure(command string, cat *catalog.Catalog, offeringID string, values map[string]any) (map[string]any, error) {
	out, vs := cat.Configure(offeringID, values)
	if len(vs) > 0 {
		return nil, violationsErr(command, vs)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// checkConfiguration checks every line of s against the catalog and returns
// all violations at once (pointers "/lines/i/..."); nil without a catalog.
func checkConfiguration(command string, s State, cat *catalog.Catalog) error {
	if cat == nil {
		return nil
	}
	lines := make([]catalog.ConfiguredLine, len(s.Lines))
	for i, l := range s.Lines {
		lines[i] = catalog.ConfiguredLine{LineID: l.LineID, OfferingID: l.OfferingID, Quantity: l.Quantity,
			Characteristics: l.Characteristics, ParentLineID: l.ParentLineID}
	}
	if vs := cat.CheckConfiguration(lines); len(vs) > 0 {
		return violationsErr(command, vs)
	}
	return nil
}

func violationsErr(command string, vs []catalog.Violation) error {
	out := make(grains.Violations, len(vs))
	for i, v := range vs {
		out[i] = grains.Violation{Pointer: v.Pointer, Code: v.Code, Message: v.Message}
	}
	return out.Err(command)
}

func decideSetCharacteristics(s State, c SetCharacteristics, env grains.Env) ([]grains.Event, error) {
	i := s.line(c.LineID)
	if i < 0 {
		return nil, violation(CmdSetCharacteristics, "/lineId", "unknown", fmt.Sprintf("quote %s has no line %q", s.ID, c.LineID))
	}
	if env.Catalog == nil {
		return nil, grains.Errorf(grains.CodeValidation, "%s: tenant %s has no published catalog", CmdSetCharacteristics, env.Tenant)
	}
	values, err := configure(CmdSetCharacteristics, env.Catalog, s.Lines[i].OfferingID, c.Characteristics)
	if err != nil {
		return nil, err
	}
	if sameValues(s.Lines[i].Characteristics, values) {
		return nil, nil
	}
	return []grains.Event{CharacteristicsSet{QuoteID: s.ID, Status: s.Status, LineID: c.LineID, Characteristics: values}}, nil
}

// sameValues compares two sets of characteristic values as JSON would.
func sameValues(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok {
			return false
		}
		fx, okx := toFloat(x)
		fy, oky := toFloat(y)
		if okx || oky {
			if !(okx && oky && fx == fy) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

func escapePointer(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch r {
		case '~':
			out = append(out, '~', '0')
		case '/':
			out = append(out, '~', '1')
		default:
			out = append(out, r)
		}
	}
	return string(out)
}
