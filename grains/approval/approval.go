// Package approval is a tenant's approval policy: named CEL rules over the
// facts of a priced quote, each yielding the approval level it requires.
//
// A Policy is compiled once (Compile) and then evaluated any number of times
// (Policy.Evaluate); evaluation is pure and deterministic. The facts a rule
// may use are:
//
//	maxLineDiscountPercent double  deepest discount of any line, in percent
//	quoteDiscountPercent   double  quote-level discount, in percent
//	oneTimeTotal           double  one-time total net of every discount
//	monthlyTotal           double  monthly recurring total net of every discount
//	termMonths             int     contract term in months; 0 when not given
//	customerSegment        string  the customer's segment; "" when not given
//
// Money and percentages are decimals in the quote; CEL sees them as doubles.
// Compare them with thresholds (oneTimeTotal > 50000.0, or 50000: numeric
// comparisons across int and double are enabled) rather than with equality,
// since a decimal such as 0.1 has no exact double.
//
// A rule whose expression is true requires approval at its level. Levels run
// in order: a quote that requires level N needs approvals at levels 1, 2, ...
// N, one after the other. A policy where no rule matches requires none.
//
// The package does not import package grains (grains.Env refers to Policy),
// so its errors are plain wrapped errors; callers map them to domain codes.
package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/shopspring/decimal"
)

// MaxLevel bounds the level a rule may require.
const MaxLevel = 9

// maxCost bounds the evaluation cost of one rule (see cel.CostLimit).
const maxCost = 10000

// Errors.
var (
	// ErrInvalidPolicy: the policy does not compile; the message names the
	// rules at fault.
	ErrInvalidPolicy = errors.New("approval: invalid policy")
	// ErrEvaluation: a rule failed at evaluation time, or the policy was
	// not compiled.
	ErrEvaluation = errors.New("approval: evaluation failed")
)

// Rule is one named condition and the level it requires.
type Rule struct {
	Name  string `json:"name"`
	Expr  string `json:"expr"`
	Level int    `json:"level"`
}

// Policy is a compiled, versioned set of rules. Build it with Compile; the
// zero Policy has no programs and cannot be evaluated. A Policy is immutable
// and safe for concurrent use.
type Policy struct {
	Version int    `json:"version"`
	Rules   []Rule `json:"rules"`

	programs []cel.Program
	compiled bool
}

// Facts are what a policy knows about a priced quote.
type Facts struct {
	MaxLineDiscountPercent decimal.Decimal
	QuoteDiscountPercent   decimal.Decimal
	OneTimeTotal           decimal.Decimal
	MonthlyTotal           decimal.Decimal
	TermMonths             int
	CustomerSegment        string
}

// Match is a rule that matched.
type Match struct {
	Rule  string `json:"rule"`
	Level int    `json:"level"`
}

// Decision is the outcome of evaluating a policy.
type Decision struct {
	PolicyVersion int
	// Level is the highest level any matched rule requires; 0 for none.
	Level int
	// Matched lists the matched rules in policy order.
	Matched []Match
}

// Levels returns the levels to approve, in order: 1..d.Level.
func (d Decision) Levels() []int {
	out := make([]int, d.Level)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// newEnv declares the facts. Built per Compile: cel.Env is cheap enough and
// keeping it local avoids package-level state.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("maxLineDiscountPercent", cel.DoubleType),
		cel.Variable("quoteDiscountPercent", cel.DoubleType),
		cel.Variable("oneTimeTotal", cel.DoubleType),
		cel.Variable("monthlyTotal", cel.DoubleType),
		cel.Variable("termMonths", cel.IntType),
		cel.Variable("customerSegment", cel.StringType),
		cel.CrossTypeNumericComparisons(true),
	)
}

// Problem is one reason a policy does not compile: the rule (its index in
// the policy; -1 for the policy as a whole), the field at fault ("name",
// "expr", "level"; "version" for the policy), a stable code ("required",
// "duplicate", "range", "compile", "type") and what is wrong.
type Problem struct {
	Rule    int
	Field   string
	Code    string
	Message string
}

// PolicyError lists every problem of a policy that does not compile. It
// wraps ErrInvalidPolicy.
type PolicyError struct {
	Problems []Problem
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return ErrInvalidPolicy.Error() + ": " + strings.Join(msgs, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidPolicy) hold.
func (e *PolicyError) Unwrap() error { return ErrInvalidPolicy }

// Compile checks and compiles rules as policy version. Every problem is
// reported at once, each naming its rule; the error is a *PolicyError,
// which wraps ErrInvalidPolicy.
func Compile(version int, rules []Rule) (*Policy, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("approval: CEL environment: %w", err)
	}
	var problems []Problem
	add := func(rule int, field, code, format string, args ...any) {
		problems = append(problems, Problem{Rule: rule, Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	if version < 1 {
		add(-1, "version", "range", "version must be at least 1, got %d", version)
	}
	seen := map[string]bool{}
	p := &Policy{Version: version, Rules: append([]Rule(nil), rules...), programs: make([]cel.Program, len(rules)), compiled: true}
	for i, r := range rules {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
			add(i, "name", "required", "rule %s: name is required", name)
		} else if seen[name] {
			add(i, "name", "duplicate", "rule %q: name is used twice", name)
		}
		seen[name] = true
		if r.Level < 1 || r.Level > MaxLevel {
			add(i, "level", "range", "rule %q: level must be 1..%d, got %d", name, MaxLevel, r.Level)
		}
		if strings.TrimSpace(r.Expr) == "" {
			add(i, "expr", "required", "rule %q: expression is required", name)
			continue
		}
		ast, iss := env.Compile(r.Expr)
		if iss.Err() != nil {
			add(i, "expr", "compile", "rule %q: %s", name, oneLine(iss.Err().Error()))
			continue
		}
		if ast.OutputType() != cel.BoolType {
			add(i, "expr", "type", "rule %q: expression must be a bool, is %s", name, ast.OutputType())
			continue
		}
		prg, err := env.Program(ast, cel.CostLimit(maxCost))
		if err != nil {
			add(i, "expr", "compile", "rule %q: %s", name, oneLine(err.Error()))
			continue
		}
		p.programs[i] = prg
	}
	if len(problems) > 0 {
		return nil, &PolicyError{Problems: problems}
	}
	return p, nil
}

// MustCompile is Compile for policies written into the program (Demo); it
// panics on an invalid policy, which is a programming error.
func MustCompile(version int, rules []Rule) *Policy {
	p, err := Compile(version, rules)
	if err != nil {
		panic(err)
	}
	return p
}

// Parse decodes a policy from JSON ({"version":1,"rules":[{"name":..,
// "expr":..,"level":..}]}) and compiles it.
func Parse(data []byte) (*Policy, error) {
	var raw struct {
		Version int    `json:"version"`
		Rules   []Rule `json:"rules"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	return Compile(raw.Version, raw.Rules)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Evaluate applies p to f. The error, if any, wraps ErrEvaluation and names
// the rule that failed.
func (p *Policy) Evaluate(f Facts) (Decision, error) {
	if p == nil || !p.compiled || len(p.programs) != len(p.Rules) {
		return Decision{}, fmt.Errorf("%w: the policy is not compiled", ErrEvaluation)
	}
	vars := map[string]any{
		"maxLineDiscountPercent": f.MaxLineDiscountPercent.InexactFloat64(),
		"quoteDiscountPercent":   f.QuoteDiscountPercent.InexactFloat64(),
		"oneTimeTotal":           f.OneTimeTotal.InexactFloat64(),
		"monthlyTotal":           f.MonthlyTotal.InexactFloat64(),
		"termMonths":             int64(f.TermMonths),
		"customerSegment":        f.CustomerSegment,
	}
	d := Decision{PolicyVersion: p.Version}
	for i, prg := range p.programs {
		r := p.Rules[i]
		if prg == nil {
			return Decision{}, fmt.Errorf("%w: rule %q is not compiled", ErrEvaluation, r.Name)
		}
		out, _, err := prg.Eval(vars)
		if err != nil {
			return Decision{}, fmt.Errorf("%w: policy v%d rule %q: %s", ErrEvaluation, p.Version, r.Name, err.Error())
		}
		matched, ok := out.Value().(bool)
		if !ok {
			return Decision{}, fmt.Errorf("%w: policy v%d rule %q gave %v, not a bool", ErrEvaluation, p.Version, r.Name, out.Value())
		}
		if matched {
			d.Matched = append(d.Matched, Match{Rule: r.Name, Level: r.Level})
			d.Level = max(d.Level, r.Level)
		}
	}
	return d, nil
}

// Authority is the highest approval level roles grant: "approver:N" grants
// level N (and so every level below it); plain "approver" grants level 1.
// Malformed approver roles grant nothing.
func Authority(roles []string) int {
	level := 0
	for _, r := range roles {
		switch {
		case r == "approver":
			level = max(level, 1)
		case strings.HasPrefix(r, "approver:"):
			var n int
			if _, err := fmt.Sscanf(r, "approver:%d", &n); err == nil && fmt.Sprintf("approver:%d", n) == r && n >= 1 && n <= MaxLevel {
				level = max(level, n)
			}
		}
	}
	return level
}

// Demo is the policy of the demo tenant, version 1:
//
//   - standard-review (level 1): every quote is reviewed once;
//   - discount-over-10 (level 1): a line or the quote is discounted by more
//     than 10%;
//   - discount-over-25 (level 2): a discount of more than 25%;
//   - large-deal (level 2): a one-time total above 50,000, or a contract
//     value (monthly total over the term, 12 months when none is given)
//     above 50,000;
//   - public-sector-long-term (level 2): public-sector customers on terms
//     longer than 36 months.
func Demo() *Policy {
	return MustCompile(1, DemoRules())
}

// DemoRules are the rules of Demo.
func DemoRules() []Rule {
	return []Rule{
		{Name: "standard-review", Expr: "true", Level: 1},
		{Name: "discount-over-10", Expr: "maxLineDiscountPercent > 10.0 || quoteDiscountPercent > 10.0", Level: 1},
		{Name: "discount-over-25", Expr: "maxLineDiscountPercent > 25.0 || quoteDiscountPercent > 25.0", Level: 2},
		{Name: "large-deal", Expr: "oneTimeTotal > 50000.0 || monthlyTotal * double(termMonths == 0 ? 12 : termMonths) > 50000.0", Level: 2},
		{Name: "public-sector-long-term", Expr: `customerSegment == "public-sector" && termMonths > 36`, Level: 2},
	}
}

// FactsRecord is Facts as evidence records them: decimals as strings, so
// that the record survives JSON unchanged.
type FactsRecord struct {
	MaxLineDiscountPercent string `json:"maxLineDiscountPercent"`
	QuoteDiscountPercent   string `json:"quoteDiscountPercent"`
	OneTimeTotal           string `json:"oneTimeTotal"`
	MonthlyTotal           string `json:"monthlyTotal"`
	TermMonths             int    `json:"termMonths"`
	CustomerSegment        string `json:"customerSegment"`
}

// Record returns f as evidence records it.
func (f Facts) Record() FactsRecord {
	return FactsRecord{
		MaxLineDiscountPercent: f.MaxLineDiscountPercent.String(), QuoteDiscountPercent: f.QuoteDiscountPercent.String(),
		OneTimeTotal: f.OneTimeTotal.String(), MonthlyTotal: f.MonthlyTotal.String(),
		TermMonths: f.TermMonths, CustomerSegment: f.CustomerSegment,
	}
}
