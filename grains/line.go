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
}

// CloneLines returns a copy of lines that shares no backing array, so that a
// new state never aliases an old one.
func CloneLines(lines []Line) []Line {
	if lines == nil {
		return nil
	}
	out := make([]Line, len(lines))
	copy(out, lines)
	return out
}
