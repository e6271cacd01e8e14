package approval_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/grainline/grainline/grains/approval"
	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestCompileRejectsInvalidPolicies(t *testing.T) {
	tests := []struct {
		name    string
		version int
		rules   []approval.Rule
		want    []string // substrings of the error
	}{
		{"syntax error", 1, []approval.Rule{{Name: "broken", Expr: "oneTimeTotal >", Level: 1}}, []string{`rule "broken"`}},
		{"unknown fact", 1, []approval.Rule{{Name: "typo", Expr: "oneTimeTotl > 1.0", Level: 1}}, []string{`rule "typo"`, "oneTimeTotl"}},
		{"not a bool", 1, []approval.Rule{{Name: "number", Expr: "oneTimeTotal * 2.0", Level: 1}}, []string{`rule "number"`, "must be a bool"}},
		{"type mismatch", 1, []approval.Rule{{Name: "segment", Expr: "customerSegment > 3", Level: 1}}, []string{`rule "segment"`}},
		{"empty expression", 1, []approval.Rule{{Name: "empty", Expr: "  ", Level: 1}}, []string{`rule "empty": expression is required`}},
		{"level zero", 1, []approval.Rule{{Name: "zero", Expr: "true", Level: 0}}, []string{`rule "zero": level must be 1..9`}},
		{"level too high", 1, []approval.Rule{{Name: "ten", Expr: "true", Level: 10}}, []string{`rule "ten": level`}},
		{"no name", 1, []approval.Rule{{Expr: "true", Level: 1}}, []string{"rule #1: name is required"}},
		{"duplicate name", 1, []approval.Rule{{Name: "a", Expr: "true", Level: 1}, {Name: "a", Expr: "false", Level: 2}}, []string{`rule "a": name is used twice`}},
		{"version zero", 0, []approval.Rule{{Name: "a", Expr: "true", Level: 1}}, []string{"version must be at least 1"}},
		{"every problem at once", 1, []approval.Rule{
			{Name: "x", Expr: "nope", Level: 1}, {Name: "y", Expr: "true", Level: 0},
		}, []string{`rule "x"`, `rule "y"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := approval.Compile(tt.version, tt.rules)
			if err == nil {
				t.Fatalf("Compile succeeded: %+v", p)
			}
			if !errors.Is(err, approval.ErrInvalidPolicy) {
				t.Errorf("error %v does not wrap ErrInvalidPolicy", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	p, err := approval.Compile(3, []approval.Rule{
		{Name: "discount-over-10", Expr: "maxLineDiscountPercent > 10 || quoteDiscountPercent > 10", Level: 1},
		{Name: "discount-over-25", Expr: "maxLineDiscountPercent > 25.0 || quoteDiscountPercent > 25.0", Level: 2},
		{Name: "big", Expr: "oneTimeTotal + monthlyTotal * double(termMonths) > 50000.0", Level: 2},
		{Name: "gov", Expr: `customerSegment == "public-sector"`, Level: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		facts   approval.Facts
		level   int
		matched []string
	}{
		{"nothing", approval.Facts{OneTimeTotal: d("1000"), MonthlyTotal: d("100"), TermMonths: 12}, 0, nil},
		{"exactly 10% is fine", approval.Facts{MaxLineDiscountPercent: d("10")}, 0, nil},
		{"line over 10%", approval.Facts{MaxLineDiscountPercent: d("10.01")}, 1, []string{"discount-over-10"}},
		{"quote over 25%", approval.Facts{QuoteDiscountPercent: d("30")}, 2, []string{"discount-over-10", "discount-over-25"}},
		{"contract value", approval.Facts{OneTimeTotal: d("2000"), MonthlyTotal: d("1000.00"), TermMonths: 49}, 2, []string{"big"}},
		{"contract value at the limit", approval.Facts{OneTimeTotal: d("2000"), MonthlyTotal: d("1000.00"), TermMonths: 48, CustomerSegment: "smb"}, 0, nil},
		{"segment", approval.Facts{CustomerSegment: "public-sector"}, 3, []string{"gov"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := p.Evaluate(tt.facts)
			if err != nil {
				t.Fatal(err)
			}
			if dec.PolicyVersion != 3 || dec.Level != tt.level {
				t.Errorf("decision %+v, want version 3 level %d", dec, tt.level)
			}
			var names []string
			for _, m := range dec.Matched {
				names = append(names, m.Rule)
			}
			if !reflect.DeepEqual(names, tt.matched) {
				t.Errorf("matched %v, want %v", names, tt.matched)
			}
			if len(dec.Levels()) != tt.level {
				t.Errorf("levels %v, want 1..%d", dec.Levels(), tt.level)
			}
		})
	}
}

func TestEvaluateIsDeterministicAndConcurrent(t *testing.T) {
	p := approval.Demo()
	f := approval.Facts{MaxLineDiscountPercent: d("26"), OneTimeTotal: d("100"), MonthlyTotal: d("10")}
	want, err := p.Evaluate(f)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				got, err := p.Evaluate(f)
				if err != nil || !reflect.DeepEqual(got, want) {
					errs <- errors.Join(err, errors.New("decision changed between evaluations"))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEvaluateRuntimeErrorNamesRule(t *testing.T) {
	p, err := approval.Compile(1, []approval.Rule{{Name: "div", Expr: "100 / termMonths > 1", Level: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Evaluate(approval.Facts{})
	if !errors.Is(err, approval.ErrEvaluation) || !strings.Contains(err.Error(), `rule "div"`) {
		t.Fatalf("got %v, want an evaluation error naming the rule", err)
	}
	var zero approval.Policy
	if _, err := zero.Evaluate(approval.Facts{}); !errors.Is(err, approval.ErrEvaluation) {
		t.Fatalf("uncompiled policy: got %v", err)
	}
	var nilPolicy *approval.Policy
	if _, err := nilPolicy.Evaluate(approval.Facts{}); !errors.Is(err, approval.ErrEvaluation) {
		t.Fatalf("nil policy: got %v", err)
	}
}

func TestDemoPolicy(t *testing.T) {
	p := approval.Demo()
	tests := []struct {
		name  string
		facts approval.Facts
		level int
	}{
		{"small quote is reviewed once", approval.Facts{OneTimeTotal: d("3280.00"), MonthlyTotal: d("249.80")}, 1},
		{"15% discount", approval.Facts{MaxLineDiscountPercent: d("15"), OneTimeTotal: d("100")}, 1},
		{"30% quote discount", approval.Facts{QuoteDiscountPercent: d("30")}, 2},
		{"one-time over 50k", approval.Facts{OneTimeTotal: d("50000.01")}, 2},
		{"one-time at 50k", approval.Facts{OneTimeTotal: d("50000.00")}, 1},
		{"monthly over a default 12-month term", approval.Facts{MonthlyTotal: d("4200")}, 2},
		{"monthly under an explicit 6-month term", approval.Facts{MonthlyTotal: d("4200"), TermMonths: 6}, 1},
		{"public sector, 48 months", approval.Facts{CustomerSegment: "public-sector", TermMonths: 48}, 2},
		{"public sector, 24 months", approval.Facts{CustomerSegment: "public-sector", TermMonths: 24}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := p.Evaluate(tt.facts)
			if err != nil {
				t.Fatal(err)
			}
			if dec.Level != tt.level {
				t.Errorf("level %d (%+v), want %d", dec.Level, dec.Matched, tt.level)
			}
		})
	}
}

func TestParse(t *testing.T) {
	p, err := approval.Parse([]byte(`{"version":2,"rules":[{"name":"a","expr":"quoteDiscountPercent > 5","level":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := p.Evaluate(approval.Facts{QuoteDiscountPercent: d("6")})
	if err != nil || dec.Level != 1 || dec.PolicyVersion != 2 {
		t.Fatalf("got %+v, %v", dec, err)
	}
	if _, err := approval.Parse([]byte(`{"version":2,"rules":[{"name":"a","expr":"quoteDiscountPercent >","level":1}]}`)); !errors.Is(err, approval.ErrInvalidPolicy) {
		t.Fatalf("invalid rule: got %v", err)
	}
	if _, err := approval.Parse([]byte(`{`)); !errors.Is(err, approval.ErrInvalidPolicy) {
		t.Fatalf("bad JSON: got %v", err)
	}
}

func TestAuthority(t *testing.T) {
	tests := []struct {
		roles []string
		want  int
	}{
		{nil, 0},
		{[]string{"sales"}, 0},
		{[]string{"approver"}, 1},
		{[]string{"approver:2"}, 2},
		{[]string{"approver", "approver:3", "approver:2"}, 3},
		{[]string{"approver:0"}, 0},
		{[]string{"approver:x"}, 0},
		{[]string{"approver:02"}, 0},
		{[]string{"approver:2x"}, 0},
		{[]string{"approver:10"}, 0},
		{[]string{"approvers"}, 0},
	}
	for _, tt := range tests {
		if got := approval.Authority(tt.roles); got != tt.want {
			t.Errorf("Authority(%v) = %d, want %d", tt.roles, got, tt.want)
		}
	}
}

// Every problem is reported with its rule index and field.
func TestCompileReportsProblemsByRuleAndField(t *testing.T) {
	_, err := approval.Compile(0, []approval.Rule{
		{Name: "ok", Expr: "true", Level: 1},
		{Name: "bad-expr", Expr: "oneTimeTotal >", Level: 1},
		{Name: "", Expr: "termMonths", Level: 10},
		{Name: "ok", Expr: "customerSegment == 1", Level: 2},
	})
	var pe *approval.PolicyError
	if !errors.As(err, &pe) || !errors.Is(err, approval.ErrInvalidPolicy) {
		t.Fatalf("Compile: %v, want a *PolicyError wrapping ErrInvalidPolicy", err)
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, fmt.Sprintf("%d/%s/%s", p.Rule, p.Field, p.Code))
		if p.Message == "" || !strings.Contains(err.Error(), p.Message) {
			t.Errorf("problem %+v: message missing from %q", p, err)
		}
	}
	want := []string{"-1/version/range", "1/expr/compile", "2/name/required", "2/level/range", "2/expr/type", "3/name/duplicate", "3/expr/compile"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("problems %v, want %v", got, want)
	}
}
