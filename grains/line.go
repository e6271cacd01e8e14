package grains

// Line is one priced line of a quote, carried unchanged into the order the
// quote becomes. Amounts are decimal strings: unit prices as the catalog
// states them (at least the currency's minor-unit scale), totals rounded to
// the currency's minor units, e.g. "1234.50".
type Line struct {
	LineID       string `json:"lineId"`
	OfferingID   string `json:"offeringId"`
	Name         string `json:"name"`
	Quantity     int    `json:"quantity"`
	UnitOneTime  string `json:"unitOneTime"`
	UnitMonthly  string `json:"unitMonthly"`
	OneTimeTotal string `json:"oneTimeTotal"`
	MonthlyTotal string `json:"monthlyTotal"`
	// Characteristics are the line's configured characteristic values
	// (JSON scalars: string, number, boolean), defaults filled in; absent
	// for lines without any and lines recorded before configuration.
	Characteristics map[string]any `json:"characteristics,omitempty"`
	// ParentLineID names the bundle line this line belongs to; "" for a
	// top-level line.
	ParentLineID string `json:"parentLineId,omitempty"`
}

// CloneLines returns a copy of lines that shares no backing array nor
// characteristics map, so that a new state never aliases an old one.
func CloneLines(lines []Line) []Line {
	if lines == nil {
		return nil
	}
	out := make([]Line, len(lines))
	copy(out, lines)
	for i := range out {
		out[i].Characteristics = CloneValues(out[i].Characteristics)
	}
	return out
}

// CloneValues returns a copy of a map of JSON scalars; nil stays nil.
func CloneValues(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
