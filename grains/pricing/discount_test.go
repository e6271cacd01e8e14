package pricing

import (
	"math/rand"
	"strconv"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/shopspring/decimal"
)

func pct(p string) *Discount { return &Discount{Percent: d(p)} }
func amt(a string, c Charge) *Discount {
	return &Discount{Amount: d(a), Charge: c}
}
func tier(min int, one, mon string) catalog.Tier {
	return catalog.Tier{MinQuantity: min, OneTime: d(one), MonthlyRecurring: d(mon)}
}

func TestEvaluateTable(t *testing.T) {
	tiers := []catalog.Tier{tier(10, "90", "9"), tier(50, "80", "8")}
	withTiers := func(id string, qty int) Line {
		l := line(id, qty, "100", "10")
		l.Tiers = tiers
		return l
	}
	withDisc := func(l Line, dd *Discount) Line { l.Discount = dd; return l }
	tests := []struct {
		name                   string
		in                     Input
		wantLines              [][2]string // net one-time, monthly
		wantSubOne, wantSubMon string
		wantOne, wantMon       string
		wantTier               []int
	}{
		{name: "below the first tier", in: Input{Currency: "EUR", Lines: []Line{withTiers("1", 9)}},
			wantLines: [][2]string{{"900.00", "90.00"}}, wantSubOne: "900.00", wantSubMon: "90.00", wantOne: "900.00", wantMon: "90.00", wantTier: []int{0}},
		{name: "at the first tier", in: Input{Currency: "EUR", Lines: []Line{withTiers("1", 10)}},
			wantLines: [][2]string{{"900.00", "90.00"}}, wantSubOne: "900.00", wantSubMon: "90.00", wantOne: "900.00", wantMon: "90.00", wantTier: []int{10}},
		{name: "top tier", in: Input{Currency: "EUR", Lines: []Line{withTiers("1", 60)}},
			wantLines: [][2]string{{"4800.00", "480.00"}}, wantSubOne: "4800.00", wantSubMon: "480.00", wantOne: "4800.00", wantMon: "480.00", wantTier: []int{50}},
		{name: "line percent on both charges", in: Input{Currency: "EUR", Lines: []Line{withDisc(line("1", 3, "33.33", "1.01"), pct("10"))}},
			// gross 99.99 / 3.03; 10% = 10.00 (9.999) / 0.30 (0.303)
			wantLines: [][2]string{{"89.99", "2.73"}}, wantSubOne: "89.99", wantSubMon: "2.73", wantOne: "89.99", wantMon: "2.73", wantTier: []int{0}},
		{name: "line amount off one-time", in: Input{Currency: "EUR", Lines: []Line{withDisc(line("1", 2, "100", "10"), amt("50", ""))}},
			wantLines: [][2]string{{"150.00", "20.00"}}, wantSubOne: "150.00", wantSubMon: "20.00", wantOne: "150.00", wantMon: "20.00", wantTier: []int{0}},
		{name: "line amount off monthly, capped at zero", in: Input{Currency: "EUR", Lines: []Line{withDisc(line("1", 2, "100", "10"), amt("500", ChargeMonthly))}},
			wantLines: [][2]string{{"200.00", "0.00"}}, wantSubOne: "200.00", wantSubMon: "0.00", wantOne: "200.00", wantMon: "0.00", wantTier: []int{0}},
		{name: "100 percent", in: Input{Currency: "EUR", Lines: []Line{withDisc(line("1", 2, "100", "10"), pct("100"))}},
			wantLines: [][2]string{{"0.00", "0.00"}}, wantSubOne: "0.00", wantSubMon: "0.00", wantOne: "0.00", wantMon: "0.00", wantTier: []int{0}},
		{name: "quote percent on each subtotal", in: Input{Currency: "EUR", Discount: pct("12.5"),
			Lines: []Line{line("1", 1, "100.01", "10.05"), line("2", 1, "0.03", "0")}},
			// subtotals 100.04 / 10.05; 12.5% = 12.51 (12.505) / 1.26 (1.25625)
			wantLines: [][2]string{{"100.01", "10.05"}, {"0.03", "0.00"}}, wantSubOne: "100.04", wantSubMon: "10.05", wantOne: "87.53", wantMon: "8.79", wantTier: []int{0, 0}},
		{name: "quote amount off monthly only", in: Input{Currency: "USD", Discount: amt("15.50", ChargeMonthly),
			Lines: []Line{line("1", 2, "1590", "39")}},
			wantLines: [][2]string{{"3180.00", "78.00"}}, wantSubOne: "3180.00", wantSubMon: "78.00", wantOne: "3180.00", wantMon: "62.50", wantTier: []int{0}},
		{name: "quote amount capped at the subtotal", in: Input{Currency: "EUR", Discount: amt("1000", ChargeOneTime),
			Lines: []Line{line("1", 1, "380", "0")}},
			wantLines: [][2]string{{"380.00", "0.00"}}, wantSubOne: "380.00", wantSubMon: "0.00", wantOne: "0.00", wantMon: "0.00", wantTier: []int{0}},
		{name: "line and quote discounts together, tiers", in: Input{Currency: "EUR", Discount: pct("5"),
			Lines: []Line{withDisc(withTiers("1", 10), amt("100", "")), line("2", 1, "380", "0")}},
			// line 1: 900/90 less 100 one-time = 800/90; subtotal 1180/90; 5% = 59/4.50
			wantLines: [][2]string{{"800.00", "90.00"}, {"380.00", "0.00"}}, wantSubOne: "1180.00", wantSubMon: "90.00", wantOne: "1121.00", wantMon: "85.50", wantTier: []int{10, 0}},
		{name: "JPY rounds to whole yen", in: Input{Currency: "JPY", Discount: pct("3"), Lines: []Line{line("1", 3, "1999.5", "100.4")}},
			// gross 5999 (5998.5) / 301 (301.2); 3% = 180 (179.97) / 9 (9.03)
			wantLines: [][2]string{{"5999", "301"}}, wantSubOne: "5999", wantSubMon: "301", wantOne: "5819", wantMon: "292", wantTier: []int{0}},
		{name: "GBP", in: Input{Currency: "GBP", Lines: []Line{withDisc(line("1", 7, "0.115", "0"), pct("33.3333"))}},
			// gross 0.81 (0.805); discount 0.27 (0.26999973)
			wantLines: [][2]string{{"0.54", "0.00"}}, wantSubOne: "0.54", wantSubMon: "0.00", wantOne: "0.54", wantMon: "0.00", wantTier: []int{0}},
		{name: "CHF", in: Input{Currency: "CHF", Discount: amt("0.05", ""), Lines: []Line{line("1", 1, "10.005", "0")}},
			wantLines: [][2]string{{"10.01", "0.00"}}, wantSubOne: "10.01", wantSubMon: "0.00", wantOne: "9.96", wantMon: "0.00", wantTier: []int{0}},
		{name: "SEK", in: Input{Currency: "SEK", Lines: []Line{line("1", 4, "249.995", "99.995")}},
			wantLines: [][2]string{{"999.98", "399.98"}}, wantSubOne: "999.98", wantSubMon: "399.98", wantOne: "999.98", wantMon: "399.98", wantTier: []int{0}},
		{name: "BHD three places", in: Input{Currency: "BHD", Discount: pct("10"), Lines: []Line{line("1", 7, "1.2345", "0")}},
			wantLines: [][2]string{{"8.642", "0.000"}}, wantSubOne: "8.642", wantSubMon: "0.000", wantOne: "7.778", wantMon: "0.000", wantTier: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Evaluate(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.wantLines {
				l := r.Lines[i]
				if got := [2]string{Format(l.OneTimeTotal, r.Scale), Format(l.MonthlyTotal, r.Scale)}; got != w {
					t.Errorf("line %d net %v, want %v", i, got, w)
				}
				if l.Tier != tt.wantTier[i] {
					t.Errorf("line %d tier %d, want %d", i, l.Tier, tt.wantTier[i])
				}
			}
			v := r.View()
			if v.SubtotalOneTime != tt.wantSubOne || v.SubtotalMonthly != tt.wantSubMon {
				t.Errorf("subtotals %s/%s, want %s/%s", v.SubtotalOneTime, v.SubtotalMonthly, tt.wantSubOne, tt.wantSubMon)
			}
			if r.OneTime() != tt.wantOne || r.Monthly() != tt.wantMon {
				t.Errorf("totals %s/%s, want %s/%s", r.OneTime(), r.Monthly(), tt.wantOne, tt.wantMon)
			}
			last := r.Trace[len(r.Trace)-1]
			if last.What != "total" || last.Output["oneTime"] != tt.wantOne || last.Output["monthly"] != tt.wantMon {
				t.Errorf("last trace step %+v", last)
			}
		})
	}
}

func TestTraceSteps(t *testing.T) {
	l := line("1", 10, "100", "10")
	l.Tiers = []catalog.Tier{tier(10, "90", "9")}
	l.Discount = pct("10")
	r, err := Evaluate(Input{Currency: "EUR", Lines: []Line{l, line("2", 1, "5", "0")}, Discount: amt("1", "")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Trace {
		got = append(got, s.What+":"+s.LineID)
		if s.Inputs == nil || s.Output == nil {
			t.Errorf("step %s has no inputs or output", s.What)
		}
	}
	want := "unit:1 gross:1 lineDiscount:1 unit:2 gross:2 subtotal: quoteDiscount: total:"
	if j := joinSp(got); j != want {
		t.Fatalf("trace %s\nwant  %s", j, want)
	}
	if u := r.Trace[0].Output; u["tier"] != "10" || u["unitOneTime"] != "90.00" {
		t.Fatalf("unit step %v", u)
	}
	if ld := r.Trace[2]; ld.Inputs["percent"] != "10" || ld.Output["discountOneTime"] != "90.00" || ld.Output["oneTime"] != "810.00" {
		t.Fatalf("line discount step %+v", ld)
	}
}

func joinSp(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestEvaluateValidation(t *testing.T) {
	bad := func(l Line, f func(*Line)) []Line { f(&l); return []Line{l} }
	base := line("1", 1, "10", "1")
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{"negative percent", Input{Currency: "EUR", Discount: pct("-5")}, []string{"/discount/percent"}},
		{"percent above 100", Input{Currency: "EUR", Discount: pct("100.01")}, []string{"/discount/percent"}},
		{"negative amount", Input{Currency: "EUR", Discount: amt("-1", "")}, []string{"/discount/amount"}},
		{"amount finer than cents", Input{Currency: "EUR", Discount: amt("0.001", "")}, []string{"/discount/amount"}},
		{"amount finer than yen", Input{Currency: "JPY", Discount: amt("0.5", "")}, []string{"/discount/amount"}},
		{"empty discount", Input{Currency: "EUR", Discount: &Discount{}}, []string{"/discount"}},
		{"both", Input{Currency: "EUR", Discount: &Discount{Percent: d("1"), Amount: d("1")}}, []string{"/discount"}},
		{"bad charge", Input{Currency: "EUR", Discount: amt("1", "yearly")}, []string{"/discount/charge"}},
		{"charge with percent", Input{Currency: "EUR", Discount: &Discount{Percent: d("1"), Charge: ChargeMonthly}}, []string{"/discount/charge"}},
		{"line discount", Input{Currency: "EUR", Lines: bad(base, func(l *Line) { l.Discount = pct("101") })}, []string{"/lines/0/discount/percent"}},
		{"tiers out of order", Input{Currency: "EUR", Lines: bad(base, func(l *Line) { l.Tiers = []catalog.Tier{tier(10, "1", "1"), tier(5, "1", "1")} })}, []string{"/lines/0/tiers/1/minQuantity"}},
		{"tier at one", Input{Currency: "EUR", Lines: bad(base, func(l *Line) { l.Tiers = []catalog.Tier{tier(1, "1", "1")} })}, []string{"/lines/0/tiers/0/minQuantity"}},
		{"negative tier", Input{Currency: "EUR", Lines: bad(base, func(l *Line) { l.Tiers = []catalog.Tier{tier(2, "-1", "1")} })}, []string{"/lines/0/tiers/0"}},
		{"unknown currency with discount", Input{Currency: "XTS", Discount: amt("0.001", "")}, []string{"/currency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Evaluate(tt.in)
			if grains.CodeOf(err) != grains.CodeValidation {
				t.Fatalf("err = %v, want validation_failed", err)
			}
			var got []string
			for _, v := range err.(*grains.Error).Violations {
				got = append(got, v.Pointer)
			}
			if joinSp(got) != joinSp(tt.want) {
				t.Fatalf("violations %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMinorUnitsTable(t *testing.T) {
	for cur, want := range map[string]int32{"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "SEK": 2, "BHD": 3, "KWD": 3, "ISK": 0} {
		if got, ok := MinorUnits(cur); !ok || got != want {
			t.Errorf("MinorUnits(%s) = %d, %v; want %d", cur, got, ok, want)
		}
	}
	for _, cur := range []string{"", "eur", "XXX", "EURO"} {
		if _, ok := MinorUnits(cur); ok {
			t.Errorf("MinorUnits(%q) is known", cur)
		}
	}
}

// randomInput draws a valid input.
func randomInput(rng *rand.Rand) Input {
	currencies := []string{"EUR", "USD", "GBP", "CHF", "JPY", "SEK", "BHD"}
	cur := currencies[rng.Intn(len(currencies))]
	scale, _ := MinorUnits(cur)
	disc := func() *Discount {
		switch rng.Intn(4) {
		case 0:
			return &Discount{Percent: decimal.New(1+rng.Int63n(10000), -2)} // 0.01 .. 100.00
		case 1:
			c := ChargeOneTime
			if rng.Intn(2) == 0 {
				c = ChargeMonthly
			}
			return &Discount{Amount: decimal.New(1+rng.Int63n(500000), -scale), Charge: c}
		}
		return nil
	}
	n := rng.Intn(7)
	in := Input{Currency: cur, Lines: make([]Line, n), Discount: disc()}
	for i := range in.Lines {
		l := Line{
			LineID: strconv.Itoa(i + 1), OfferingID: "off-" + strconv.Itoa(rng.Intn(5)), Quantity: 1 + rng.Intn(200),
			UnitOneTime: decimal.New(rng.Int63n(10_000_000), -int32(rng.Intn(5))),
			UnitMonthly: decimal.New(rng.Int63n(1_000_000), -int32(rng.Intn(5))),
			Discount:    disc(),
		}
		min := 1
		for k := rng.Intn(3); k > 0; k-- {
			min += 1 + rng.Intn(60)
			l.Tiers = append(l.Tiers, catalog.Tier{MinQuantity: min,
				OneTime: decimal.New(rng.Int63n(10_000_000), -3), MonthlyRecurring: decimal.New(rng.Int63n(1_000_000), -3)})
		}
		in.Lines[i] = l
	}
	return in
}

// checkInvariants asserts what must hold of every successful result.
func checkInvariants(t *testing.T, in Input, r Result) {
	t.Helper()
	sum := Pair{decimal.Zero, decimal.Zero}
	for i, l := range r.Lines {
		if l.LineID != in.Lines[i].LineID {
			t.Fatalf("line %d is %s, want %s", i, l.LineID, in.Lines[i].LineID)
		}
		for _, a := range []decimal.Decimal{l.OneTimeTotal, l.MonthlyTotal, l.Discount.OneTime, l.Discount.Monthly} {
			if a.IsNegative() || !a.Equal(a.Round(r.Scale)) {
				t.Fatalf("line %s amount %s negative or not at scale %d", l.LineID, a, r.Scale)
			}
		}
		if !l.Gross.sub(l.Discount).OneTime.Equal(l.OneTimeTotal) || !l.Gross.sub(l.Discount).Monthly.Equal(l.MonthlyTotal) {
			t.Fatalf("line %s: gross - discount != net", l.LineID)
		}
		sum = sum.add(Pair{l.OneTimeTotal, l.MonthlyTotal})
	}
	if !sum.OneTime.Equal(r.Subtotal.OneTime) || !sum.Monthly.Equal(r.Subtotal.Monthly) {
		t.Fatalf("subtotal %v != sum of lines %v", r.Subtotal, sum)
	}
	want := sum.sub(r.QuoteDiscount)
	if !want.OneTime.Equal(r.OneTimeTotal) || !want.Monthly.Equal(r.MonthlyTotal) {
		t.Fatalf("totals %s/%s != sum of lines minus quote discount %s/%s", r.OneTimeTotal, r.MonthlyTotal, want.OneTime, want.Monthly)
	}
	if r.OneTimeTotal.IsNegative() || r.MonthlyTotal.IsNegative() || r.QuoteDiscount.OneTime.IsNegative() || r.QuoteDiscount.Monthly.IsNegative() {
		t.Fatalf("negative total or discount: %s/%s", r.OneTimeTotal, r.MonthlyTotal)
	}
	if len(r.Hash) != 64 {
		t.Fatalf("hash %q", r.Hash)
	}
}

// TestEvaluateProperties: over seeded random inputs, the same input gives
// the same hash and result, the invariants hold, and changing any one input
// changes the hash.
func TestEvaluateProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(20260301))
	for iter := 0; iter < 1000; iter++ {
		in := randomInput(rng)
		r1, err := Evaluate(in)
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		checkInvariants(t, in, r1)
		r2, err := Evaluate(cloneInput(in))
		if err != nil || r2.Hash != r1.Hash || r2.OneTime() != r1.OneTime() || r2.Monthly() != r1.Monthly() {
			t.Fatalf("iter %d: same input priced differently (%v)", iter, err)
		}
		for _, m := range mutations(in) {
			rm, err := Evaluate(m.in)
			if err != nil {
				t.Fatalf("iter %d, %s: %v", iter, m.name, err)
			}
			if rm.Hash == r1.Hash {
				t.Fatalf("iter %d: changing %s leaves the hash unchanged", iter, m.name)
			}
		}
	}
}

func cloneInput(in Input) Input {
	out := in
	out.Lines = make([]Line, len(in.Lines))
	for i, l := range in.Lines {
		l.Tiers = append([]catalog.Tier(nil), l.Tiers...)
		if l.Discount != nil {
			dd := *l.Discount
			l.Discount = &dd
		}
		out.Lines[i] = l
	}
	if in.Discount != nil {
		dd := *in.Discount
		out.Discount = &dd
	}
	return out
}

type mutation struct {
	name string
	in   Input
}

// mutations returns inputs that differ from in in exactly one input.
func mutations(in Input) []mutation {
	var out []mutation
	add := func(name string, f func(*Input)) {
		c := cloneInput(in)
		f(&c)
		out = append(out, mutation{name, c})
	}
	add("currency", func(c *Input) {
		// Another currency of the same scale, so that amounts stay valid.
		c.Currency = map[string]string{"EUR": "USD", "USD": "EUR", "GBP": "EUR", "CHF": "EUR", "SEK": "EUR", "JPY": "ISK", "BHD": "KWD"}[c.Currency]
	})
	add("quote discount", func(c *Input) {
		if c.Discount == nil {
			c.Discount = pct("1")
		} else {
			c.Discount = nil
		}
	})
	add("extra line", func(c *Input) { c.Lines = append(c.Lines, line("x", 1, "0", "0")) })
	if len(in.Lines) == 0 {
		return out
	}
	add("quantity", func(c *Input) { c.Lines[0].Quantity++ })
	add("offering", func(c *Input) { c.Lines[0].OfferingID += "-b" })
	add("line id", func(c *Input) { c.Lines[0].LineID += "-b" })
	add("list one-time", func(c *Input) { c.Lines[0].UnitOneTime = c.Lines[0].UnitOneTime.Add(d("0.0001")) })
	add("list monthly", func(c *Input) { c.Lines[0].UnitMonthly = c.Lines[0].UnitMonthly.Add(d("0.0001")) })
	add("tiers", func(c *Input) {
		last := 1
		if n := len(c.Lines[0].Tiers); n > 0 {
			last = c.Lines[0].Tiers[n-1].MinQuantity
		}
		c.Lines[0].Tiers = append(c.Lines[0].Tiers, tier(last+1000, "1", "1"))
	})
	add("line discount", func(c *Input) {
		if c.Lines[0].Discount == nil {
			c.Lines[0].Discount = amt("1", ChargeMonthly)
		} else {
			c.Lines[0].Discount = nil
		}
	})
	if len(in.Lines) > 1 {
		add("line order", func(c *Input) { c.Lines[0], c.Lines[1] = c.Lines[1], c.Lines[0] })
	}
	return out
}

// FuzzPrice: any input either fails validation with a domain error or
// prices with every invariant holding; nothing panics.
func FuzzPrice(f *testing.F) {
	f.Add("EUR", 3, "1450.00", "35.00", 10, "1380", "33", "10", "", "", "5", "")
	f.Add("JPY", 1, "1999.5", "100.4", 0, "", "", "", "300", "monthly", "", "1000")
	f.Add("BHD", 7, "1.2345", "0", 2, "1", "0", "", "0.001", "", "100", "")
	f.Add("XXX", -1, "-1", "x", 1, "-2", "", "101", "-3", "yearly", "-1", "0.001")
	f.Fuzz(func(t *testing.T, cur string, qty int, one, mon string, tierMin int, tierOne, tierMon, linePct, lineAmt, lineCharge, quotePct, quoteAmt string) {
		dec := func(s string) decimal.Decimal {
			v, err := decimal.NewFromString(s)
			if err != nil || v.Exponent() < -20 || v.Exponent() > 20 {
				return decimal.Zero
			}
			return v
		}
		l := Line{LineID: "1", OfferingID: "o", Quantity: qty, UnitOneTime: dec(one), UnitMonthly: dec(mon)}
		if tierMin != 0 {
			l.Tiers = []catalog.Tier{{MinQuantity: tierMin, OneTime: dec(tierOne), MonthlyRecurring: dec(tierMon)}}
		}
		if linePct != "" || lineAmt != "" {
			l.Discount = &Discount{Percent: dec(linePct), Amount: dec(lineAmt), Charge: Charge(lineCharge)}
		}
		in := Input{Currency: cur, Lines: []Line{l, line("2", 1, "10", "1")}}
		if quotePct != "" || quoteAmt != "" {
			in.Discount = &Discount{Percent: dec(quotePct), Amount: dec(quoteAmt)}
		}
		r, err := Evaluate(in)
		if err != nil {
			if grains.CodeOf(err) != grains.CodeValidation {
				t.Fatalf("error %v is not a validation error", err)
			}
			return
		}
		checkInvariants(t, in, r)
		again, err := Evaluate(cloneInput(in))
		if err != nil || again.Hash != r.Hash {
			t.Fatalf("not deterministic: %v", err)
		}
	})
}
