package pricing

import (
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func line(id string, qty int, oneTime, monthly string) Line {
	return Line{LineID: id, OfferingID: "off-" + id, Quantity: qty, UnitOneTime: d(oneTime), UnitMonthly: d(monthly)}
}

func TestPriceTable(t *testing.T) {
	tests := []struct {
		name        string
		currency    string
		lines       []Line
		wantLines   [][2]string // one-time, monthly per line
		wantOneTime string
		wantMonthly string
	}{
		{
			name:        "no lines",
			currency:    "EUR",
			wantOneTime: "0.00", wantMonthly: "0.00",
		},
		{
			name:        "single line",
			currency:    "EUR",
			lines:       []Line{line("1", 3, "1450.00", "35")},
			wantLines:   [][2]string{{"4350.00", "105.00"}},
			wantOneTime: "4350.00", wantMonthly: "105.00",
		},
		{
			name:     "several lines, USD",
			currency: "USD",
			lines: []Line{
				line("1", 2, "1590", "39"),
				line("2", 2, "0", "99"),
				line("3", 1, "420", "0"),
			},
			wantLines:   [][2]string{{"3180.00", "78.00"}, {"0.00", "198.00"}, {"420.00", "0.00"}},
			wantOneTime: "3600.00", wantMonthly: "276.00",
		},
		{
			name:        "half rounds away from zero per line",
			currency:    "EUR",
			lines:       []Line{line("1", 1, "0.125", "0.005"), line("2", 3, "0.335", "1.111")},
			wantLines:   [][2]string{{"0.13", "0.01"}, {"1.01", "3.33"}},
			wantOneTime: "1.14", wantMonthly: "3.34",
		},
		{
			name:        "totals are the sum of rounded lines",
			currency:    "EUR",
			lines:       []Line{line("1", 1, "0.004", "0"), line("2", 1, "0.004", "0")},
			wantLines:   [][2]string{{"0.00", "0.00"}, {"0.00", "0.00"}},
			wantOneTime: "0.00", wantMonthly: "0.00",
		},
		{
			name:        "JPY has no minor unit",
			currency:    "JPY",
			lines:       []Line{line("1", 3, "1999.5", "100.4")},
			wantLines:   [][2]string{{"5999", "301"}},
			wantOneTime: "5999", wantMonthly: "301",
		},
		{
			name:        "BHD has three",
			currency:    "BHD",
			lines:       []Line{line("1", 7, "1.2345", "0")},
			wantLines:   [][2]string{{"8.642", "0.000"}},
			wantOneTime: "8.642", wantMonthly: "0.000",
		},
	}
	hexHash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Price(tt.lines, tt.currency)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Lines) != len(tt.wantLines) {
				t.Fatalf("%d line results, want %d", len(r.Lines), len(tt.wantLines))
			}
			for i, w := range tt.wantLines {
				if got := Format(r.Lines[i].OneTimeTotal, r.Scale); got != w[0] {
					t.Errorf("line %d one-time %s, want %s", i, got, w[0])
				}
				if got := Format(r.Lines[i].MonthlyTotal, r.Scale); got != w[1] {
					t.Errorf("line %d monthly %s, want %s", i, got, w[1])
				}
				if r.Lines[i].LineID != tt.lines[i].LineID {
					t.Errorf("line %d id %s, want %s", i, r.Lines[i].LineID, tt.lines[i].LineID)
				}
			}
			if r.OneTime() != tt.wantOneTime || r.Monthly() != tt.wantMonthly {
				t.Errorf("totals %s/%s, want %s/%s", r.OneTime(), r.Monthly(), tt.wantOneTime, tt.wantMonthly)
			}
			if !hexHash.MatchString(r.Hash) {
				t.Errorf("hash %q is not hex SHA-256", r.Hash)
			}
		})
	}
}

func TestPriceValidation(t *testing.T) {
	tests := []struct {
		name     string
		currency string
		lines    []Line
		want     []string // violation pointers
	}{
		{"unknown currency", "XXX", nil, []string{"/currency"}},
		{"empty currency", "", nil, []string{"/currency"}},
		{"lower-case currency", "eur", nil, []string{"/currency"}},
		{"zero quantity", "EUR", []Line{line("1", 0, "1", "1")}, []string{"/lines/0/quantity"}},
		{"negative price", "EUR", []Line{line("1", 1, "1", "1"), line("2", 1, "-1", "-0.01")}, []string{"/lines/1/unitOneTime", "/lines/1/unitMonthly"}},
		{"duplicate and missing ids", "EUR", []Line{line("1", 1, "1", "1"), line("1", 1, "1", "1"), line("", 1, "1", "1")}, []string{"/lines/1/lineId", "/lines/2/lineId"}},
		{"everything", "ZZZ", []Line{line("1", -2, "1", "1")}, []string{"/currency", "/lines/0/quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Price(tt.lines, tt.currency)
			if grains.CodeOf(err) != grains.CodeValidation {
				t.Fatalf("err = %v, want validation_failed", err)
			}
			var got []string
			for _, v := range err.(*grains.Error).Violations {
				got = append(got, v.Pointer)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("violations %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("violations %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestHashIgnoresRepresentationOfEqualAmounts(t *testing.T) {
	a, err := Price([]Line{line("1", 2, "10", "5.5")}, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Price([]Line{line("1", 2, "10.000", "5.50")}, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash {
		t.Fatalf("10 and 10.000 hash differently:\n%s\n%s", a.Hash, b.Hash)
	}
	c, err := Price([]Line{line("1", 2, "10.001", "5.5")}, "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash == a.Hash {
		t.Fatal("a different unit price (same rounded total) gives the same hash")
	}
	doc, err := Canonical(Input{Currency: "EUR", Lines: []Line{line("1", 2, "10", "5.5")}}, a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"algorithm":"grainline.pricing.v2","currency":"EUR","lines":[{"lineId":"1","offeringId":"off-1","quantity":2,"listOneTime":"10.00","listMonthly":"5.50","tiers":[],"discount":null,"tier":0,"unitOneTime":"10.00","unitMonthly":"5.50","grossOneTime":"20.00","grossMonthly":"11.00","discountOneTime":"0.00","discountMonthly":"0.00","oneTimeTotal":"20.00","monthlyTotal":"11.00"}],"discount":null,"subtotalOneTime":"20.00","subtotalMonthly":"11.00","discountOneTime":"0.00","discountMonthly":"0.00","oneTimeTotal":"20.00","monthlyTotal":"11.00"}`
	if string(doc) != want {
		t.Fatalf("canonical document\n got %s\nwant %s", doc, want)
	}
}

func TestHashCoversEveryInput(t *testing.T) {
	base := []Line{line("1", 2, "10", "5"), line("2", 1, "3", "4")}
	r0, _ := Price(base, "EUR")
	variants := map[string]func([]Line) ([]Line, string){
		"currency":   func(l []Line) ([]Line, string) { return l, "USD" },
		"quantity":   func(l []Line) ([]Line, string) { l[0].Quantity = 3; return l, "EUR" },
		"offering":   func(l []Line) ([]Line, string) { l[1].OfferingID = "other"; return l, "EUR" },
		"line id":    func(l []Line) ([]Line, string) { l[1].LineID = "9"; return l, "EUR" },
		"one-time":   func(l []Line) ([]Line, string) { l[1].UnitOneTime = d("3.01"); return l, "EUR" },
		"monthly":    func(l []Line) ([]Line, string) { l[1].UnitMonthly = d("4.01"); return l, "EUR" },
		"line order": func(l []Line) ([]Line, string) { l[0], l[1] = l[1], l[0]; return l, "EUR" },
		"extra line": func(l []Line) ([]Line, string) { return append(l, line("3", 1, "0", "0")), "EUR" },
		"characteristics": func(l []Line) ([]Line, string) {
			l[0].Characteristics = map[string]any{"bandwidth": "1G"}
			return l, "EUR"
		},
		"parent line": func(l []Line) ([]Line, string) { l[1].ParentLineID = "1"; return l, "EUR" },
	}
	for name, mutate := range variants {
		lines, cur := mutate(append([]Line(nil), base...))
		r, err := Price(lines, cur)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Hash == r0.Hash {
			t.Errorf("changing the %s leaves the hash unchanged", name)
		}
	}
}

// TestHashOfConfiguration: two configurations of the same line never share
// a hash, key order does not matter, and a line without characteristics
// hashes as before configuration existed (the canonical document has no
// characteristics key).
func TestHashOfConfiguration(t *testing.T) {
	with := func(ch map[string]any) string {
		l := line("1", 1, "10", "5")
		l.Characteristics = ch
		r, err := Price([]Line{l}, "EUR")
		if err != nil {
			t.Fatal(err)
		}
		return r.Hash
	}
	a := with(map[string]any{"bandwidth": "1G", "sla": "standard", "ipv4Block": float64(29)})
	b := with(map[string]any{"ipv4Block": 29, "sla": "standard", "bandwidth": "1G"})
	if a != b {
		t.Errorf("the same configuration hashes differently: %s %s", a, b)
	}
	for name, ch := range map[string]map[string]any{
		"other value":  {"bandwidth": "500M", "sla": "standard", "ipv4Block": float64(29)},
		"other number": {"bandwidth": "1G", "sla": "standard", "ipv4Block": float64(28)},
		"fewer":        {"bandwidth": "1G", "sla": "standard"},
		"string 29":    {"bandwidth": "1G", "sla": "standard", "ipv4Block": "29"},
		"none":         nil,
	} {
		if with(ch) == a {
			t.Errorf("%s: same hash as the base configuration", name)
		}
	}
	if with(nil) != with(map[string]any{}) {
		t.Error("no characteristics and an empty map hash differently")
	}
	in := Input{Currency: "EUR", Lines: []Line{line("1", 1, "10", "5")}}
	r, err := Evaluate(in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Canonical(in, r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "characteristics") || strings.Contains(string(doc), "parentLineId") {
		t.Errorf("an unconfigured line's canonical document names configuration: %s", doc)
	}
}

// TestPriceProperties checks, over seeded random inputs, that pricing is
// deterministic, that totals equal the sum of the line totals, that every
// amount sits at the currency's scale, and that reordering lines keeps the
// totals but changes the hash (lines are ordered).
func TestPriceProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(20260102))
	currencies := []string{"EUR", "USD", "JPY", "BHD", "CHF"}
	for iter := 0; iter < 500; iter++ {
		cur := currencies[rng.Intn(len(currencies))]
		n := 1 + rng.Intn(8)
		lines := make([]Line, n)
		for i := range lines {
			lines[i] = Line{
				LineID:      strconv.Itoa(i + 1),
				OfferingID:  "off-" + strconv.Itoa(rng.Intn(5)),
				Quantity:    1 + rng.Intn(50),
				UnitOneTime: decimal.New(rng.Int63n(10_000_000), -int32(rng.Intn(5))),
				UnitMonthly: decimal.New(rng.Int63n(1_000_000), -int32(rng.Intn(5))),
			}
		}
		r1, err := Price(lines, cur)
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		r2, _ := Price(append([]Line(nil), lines...), cur)
		if r1.Hash != r2.Hash || r1.OneTime() != r2.OneTime() || r1.Monthly() != r2.Monthly() {
			t.Fatalf("iter %d: same input priced differently", iter)
		}
		sumOne, sumMon := decimal.Zero, decimal.Zero
		for _, l := range r1.Lines {
			sumOne, sumMon = sumOne.Add(l.OneTimeTotal), sumMon.Add(l.MonthlyTotal)
			if !l.OneTimeTotal.Equal(l.OneTimeTotal.Round(r1.Scale)) || !l.MonthlyTotal.Equal(l.MonthlyTotal.Round(r1.Scale)) {
				t.Fatalf("iter %d: line total not at scale %d", iter, r1.Scale)
			}
		}
		if !sumOne.Equal(r1.OneTimeTotal) || !sumMon.Equal(r1.MonthlyTotal) {
			t.Fatalf("iter %d: totals %s/%s != sum of lines %s/%s", iter, r1.OneTimeTotal, r1.MonthlyTotal, sumOne, sumMon)
		}
		if n > 1 {
			// A rotation by k in [1, n) is always a different order.
			k := 1 + rng.Intn(n-1)
			shuffled := append(append([]Line(nil), lines[k:]...), lines[:k]...)
			rs, err := Price(shuffled, cur)
			if err != nil {
				t.Fatal(err)
			}
			if !rs.OneTimeTotal.Equal(r1.OneTimeTotal) || !rs.MonthlyTotal.Equal(r1.MonthlyTotal) {
				t.Fatalf("iter %d: reordering changed totals", iter)
			}
			if rs.Hash == r1.Hash {
				t.Fatalf("iter %d: reordering kept the hash; lines are ordered", iter)
			}
		}
	}
}

func TestFormatUnit(t *testing.T) {
	for _, tt := range []struct {
		in    string
		scale int32
		want  string
	}{
		{"10", 2, "10.00"}, {"10.000", 2, "10.00"}, {"0.125", 2, "0.125"}, {"0.12500", 2, "0.125"},
		{"1999.5", 0, "1999.5"}, {"1999", 0, "1999"}, {"0", 3, "0.000"},
	} {
		if got := FormatUnit(d(tt.in), tt.scale); got != tt.want {
			t.Errorf("FormatUnit(%s, %d) = %s, want %s", tt.in, tt.scale, got, tt.want)
		}
	}
}
