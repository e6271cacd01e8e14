package catalog

import (
	"fmt"
	"strings"
)

// Value types of a characteristic.
const (
	ValueString  = "string"
	ValueNumber  = "number"
	ValueBoolean = "boolean"
)

// Spec is a product specification: the characteristics an offering that
// references it lets a buyer (or the catalog's defaults) choose.
type Spec struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	Characteristics []Characteristic `json:"characteristics"`
}

// Characteristic is one configurable property of an offering, e.g. the
// bandwidth of an access circuit.
//
// ValueType is ValueString, ValueNumber or ValueBoolean. Values, when
// present, enumerates the allowed values (each of ValueType). Min and Max,
// when present, bound a number inclusively; Unit names its unit. A required
// characteristic must have a value after the default is filled in; Default,
// when present, is used when the line gives no value and must itself be
// allowed.
type Characteristic struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	ValueType   string   `json:"valueType"`
	Values      []any    `json:"values,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	Unit        string   `json:"unit,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Default     any      `json:"default,omitempty"`
}

// check reports why v is not an allowed value of the characteristic, as a
// violation code and message, or "" when v is allowed.
func (ch Characteristic) check(v any) (code, msg string) {
	n, isNum := number(v)
	switch ch.ValueType {
	case ValueString:
		if _, ok := v.(string); !ok {
			return CodeValueType, fmt.Sprintf("%s must be a string, not %s", ch.Name, typeName(v))
		}
	case ValueNumber:
		if !isNum {
			return CodeValueType, fmt.Sprintf("%s must be a number, not %s", ch.Name, typeName(v))
		}
	case ValueBoolean:
		if _, ok := v.(bool); !ok {
			return CodeValueType, fmt.Sprintf("%s must be a boolean, not %s", ch.Name, typeName(v))
		}
	default:
		return CodeValueType, fmt.Sprintf("%s has unknown value type %q", ch.Name, ch.ValueType)
	}
	if len(ch.Values) > 0 {
		allowed := false
		for _, a := range ch.Values {
			if sameValue(a, v) {
				allowed = true
				break
			}
		}
		if !allowed {
			return CodeValueNotAllowed, fmt.Sprintf("%s %s is not one of %s", ch.Name, show(v), showList(ch.Values))
		}
	}
	if isNum {
		if ch.Min != nil && n < *ch.Min {
			return CodeValueOutOfRange, fmt.Sprintf("%s %s is below the minimum %s%s", ch.Name, show(v), show(*ch.Min), unitSuffix(ch.Unit))
		}
		if ch.Max != nil && n > *ch.Max {
			return CodeValueOutOfRange, fmt.Sprintf("%s %s is above the maximum %s%s", ch.Name, show(v), show(*ch.Max), unitSuffix(ch.Unit))
		}
	}
	return "", ""
}

// number returns v as a float64 when it is a Go number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// sameValue compares two JSON scalars; numbers compare by value.
func sameValue(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	return a == b
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	if _, ok := number(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	if n, ok := number(v); ok {
		return fmt.Sprintf("%g", n)
	}
	return fmt.Sprint(v)
}

func showList(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = show(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func unitSuffix(unit string) string {
	if unit == "" {
		return ""
	}
	return " " + unit
}

// validate appends the problems of the characteristic's definition, located
// under at.
func (ch Characteristic) validate(at string, add func(pointer, code, msg string)) {
	if ch.Name == "" {
		add(at+"/name", CodeRequired, "a characteristic needs a name")
	}
	switch ch.ValueType {
	case ValueString, ValueNumber, ValueBoolean:
	default:
		add(at+"/valueType", CodeInvalid, fmt.Sprintf("valueType %q is not string, number or boolean", ch.ValueType))
		return
	}
	if ch.ValueType != ValueNumber && (ch.Min != nil || ch.Max != nil) {
		add(at, CodeInvalid, "min and max apply to number characteristics only")
	}
	if ch.Min != nil && ch.Max != nil && *ch.Min > *ch.Max {
		add(at+"/max", CodeInvalid, fmt.Sprintf("max %g is below min %g", *ch.Max, *ch.Min))
	}
	for i, v := range ch.Values {
		if code, msg := ch.valueTypeOnly(v); code != "" {
			add(fmt.Sprintf("%s/values/%d", at, i), CodeInvalid, msg)
			continue
		}
		for _, w := range ch.Values[:i] {
			if sameValue(v, w) {
				add(fmt.Sprintf("%s/values/%d", at, i), CodeInvalid, fmt.Sprintf("value %s is repeated", show(v)))
			}
		}
	}
	if ch.Default != nil {
		if code, msg := ch.check(ch.Default); code != "" {
			add(at+"/default", CodeInvalid, "default: "+msg)
		}
	}
}

// valueTypeOnly checks v against the value type alone.
func (ch Characteristic) valueTypeOnly(v any) (code, msg string) {
	bare := Characteristic{Name: ch.Name, ValueType: ch.ValueType}
	return bare.check(v)
}
