package quote_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/quote"
)

func decideWith(t *testing.T, s quote.State, p *approval.Policy, name, payload string, roles ...string) (quote.State, []grains.Event, error) {
	t.Helper()
	e := env(roles...)
	e.Policy = p
	evs, err := quote.Decide(s, mustDecode(t, name, payload), e)
	return quote.Behavior.Fold(s, evs), evs, err
}

func mustStep(t *testing.T, s quote.State, p *approval.Policy, name, payload string, roles ...string) quote.State {
	t.Helper()
	s, _, err := decideWith(t, s, p, name, payload, roles...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// A policy published while a quote is in approval changes neither its
// pinned version nor its required levels, whichever policy the runtime
// passes to later commands.
func TestPolicyPublishedDuringApprovalChangesNothing(t *testing.T) {
	v1, err := approval.Compile(1, []approval.Rule{{Name: "all", Expr: "true", Level: 2}})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := approval.Compile(2, []approval.Rule{{Name: "none", Expr: "false", Level: 1}})
	if err != nil {
		t.Fatal(err)
	}
	v3, err := approval.Compile(3, []approval.Rule{{Name: "three", Expr: "true", Level: 3}})
	if err != nil {
		t.Fatal(err)
	}
	s := mustStep(t, quote.State{}, v1, "create", `{"customerId":"c-1","currency":"EUR"}`, "sales")
	s = mustStep(t, s, v1, "addLine", `{"offeringId":"dia-1g","quantity":1}`, "sales")
	s = mustStep(t, s, v1, "price", `{}`, "sales")
	s = mustStep(t, s, v1, "submit", `{}`, "sales")
	if s.PolicyVersion != 1 || s.RequiredLevel != 2 || s.Status != quote.StatusPending {
		t.Fatalf("after submit: version %d level %d status %s", s.PolicyVersion, s.RequiredLevel, s.Status)
	}
	for _, p := range []*approval.Policy{v2, v3, nil} {
		s2, evs, err := decideWith(t, s, p, "approve", `{}`, "approver:3")
		if err != nil {
			t.Fatal(err)
		}
		ev := evs[0].(quote.Approved)
		if ev.Level != 1 || ev.PolicyVersion != 1 || ev.Status != quote.StatusPending || s2.RequiredLevel != 2 {
			t.Fatalf("approve under a later policy: %+v, required %d", ev, s2.RequiredLevel)
		}
		s3, evs, err := decideWith(t, s2, p, "approve", `{}`, "approver:3")
		if err != nil {
			t.Fatal(err)
		}
		if ev := evs[0].(quote.Approved); ev.Level != 2 || ev.PolicyVersion != 1 || s3.Status != quote.StatusApproved {
			t.Fatalf("second approval under a later policy: %+v, status %s", ev, s3.Status)
		}
	}
}

func TestSubmitWithFailingPolicyIsRefused(t *testing.T) {
	p, err := approval.Compile(4, []approval.Rule{{Name: "per-month", Expr: "12 / termMonths > 1", Level: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s := mustStep(t, quote.State{}, p, "create", `{"customerId":"c-1","currency":"EUR"}`, "sales")
	s = mustStep(t, s, p, "addLine", `{"offeringId":"dia-1g","quantity":1}`, "sales")
	s = mustStep(t, s, p, "price", `{}`, "sales")
	_, evs, err := decideWith(t, s, p, "submit", `{}`, "sales")
	var de *grains.Error
	if !errors.As(err, &de) || de.Code != grains.CodeValidation || !strings.Contains(de.Message, `rule "per-month"`) {
		t.Fatalf("got %v (%d events), want a validation error naming the rule", err, len(evs))
	}
}

func TestFactsOfAmountDiscounts(t *testing.T) {
	p := approval.Demo()
	s := mustStep(t, quote.State{}, p, "create", `{"customerId":"c-1","currency":"EUR","termMonths":36,"customerSegment":"enterprise"}`, "sales")
	// 2 × 1450.00 one-time, 2 × 35.00 monthly.
	s = mustStep(t, s, p, "addLine", `{"offeringId":"sdwan-edge-m","quantity":2}`, "sales")
	// 725.00 off 2900.00 one-time is 25%; the monthly charge is untouched.
	s = mustStep(t, s, p, "setLineDiscount", `{"lineId":"1","amount":"725","charge":"oneTime"}`, "sales")
	// 7.00 off the 70.00 monthly subtotal is 10%.
	s = mustStep(t, s, p, "setQuoteDiscount", `{"amount":"7","charge":"monthly"}`, "sales")
	s = mustStep(t, s, p, "price", `{}`, "sales")
	f, err := quote.Facts(s)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Record()
	want := approval.FactsRecord{MaxLineDiscountPercent: "25", QuoteDiscountPercent: "10", OneTimeTotal: "2175",
		MonthlyTotal: "63", TermMonths: 36, CustomerSegment: "enterprise"}
	if got != want {
		t.Fatalf("facts %+v, want %+v", got, want)
	}
	if _, err := quote.Facts(quote.State{ID: "q-1"}); err == nil {
		t.Fatal("facts of an unpriced quote")
	}
}

// Events written before approval policies fold into one required level.
func TestLegacyApprovalEvents(t *testing.T) {
	s := quote.State{ID: "q-1", Status: quote.StatusInProgress, Price: &quote.PriceSummary{Hash: "h"}}
	s = quote.Apply(s, quote.Submitted{QuoteID: "q-1", Status: quote.StatusPending, PriceHash: "h", SubmittedBy: "alice", SubmittedAt: t0})
	if s.RequiredLevel != 1 || s.PolicyVersion != 0 {
		t.Fatalf("legacy submit: level %d version %d", s.RequiredLevel, s.PolicyVersion)
	}
	s = quote.Apply(s, quote.Approved{QuoteID: "q-1", Status: quote.StatusApproved, PriceHash: "h", ApprovedBy: "bob", ApprovedAt: t0})
	if s.Status != quote.StatusApproved || len(s.Approvals) != 1 || s.Approvals[0].Level != 1 || s.ApprovedBy != "bob" {
		t.Fatalf("legacy approve: %+v", s)
	}
}

func TestWithPoliciesLooksUpTheTenantsPolicy(t *testing.T) {
	strict, err := approval.Compile(7, []approval.Rule{{Name: "all", Expr: "true", Level: 3}})
	if err != nil {
		t.Fatal(err)
	}
	b := quote.WithPolicies(func(tenant grains.TenantID) *approval.Policy {
		if tenant == "demo" {
			return strict
		}
		return nil
	})
	s := mustStep(t, quote.State{}, nil, "create", `{"customerId":"c-1","currency":"EUR"}`, "sales")
	s = mustStep(t, s, nil, "addLine", `{"offeringId":"dia-1g","quantity":1}`, "sales")
	s = mustStep(t, s, nil, "price", `{}`, "sales")
	evs, err := b.Decide(s, quote.Submit{}, env("sales"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[0].(quote.Submitted); ev.PolicyVersion != 7 || ev.RequiredLevel != 3 {
		t.Fatalf("demo tenant: %+v", ev)
	}
	other := env("sales")
	other.Tenant = "other"
	evs, err = b.Decide(s, quote.Submit{}, other)
	if err != nil {
		t.Fatal(err)
	}
	if ev := evs[0].(quote.Submitted); ev.PolicyVersion != 0 || ev.RequiredLevel != 1 {
		t.Fatalf("tenant without a policy: %+v", ev)
	}
}

func TestPreviewAcceptsAnyApproverLevel(t *testing.T) {
	s := mustStep(t, quote.State{}, nil, "create", `{"customerId":"c-1","currency":"EUR"}`, "sales")
	s = mustStep(t, s, nil, "addLine", `{"offeringId":"dia-1g","quantity":1}`, "sales")
	for _, roles := range [][]string{{"sales"}, {"approver"}, {"approver:2"}} {
		if _, err := quote.Preview(s, env(roles...)); err != nil {
			t.Errorf("roles %v: %v", roles, err)
		}
	}
	if _, err := quote.Preview(s, env("approver:x")); err == nil {
		t.Error("roles [approver:x] may preview")
	}
}
