package actors

import (
	"context"
	"testing"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
)

// A command refused for authority leaves one audit-only record in the
// tenant's chain (actor, command, the refusal, correlation id, the
// aggregate's unchanged revision) and changes nothing else; the chain still
// verifies, and an allowed command chains after it.
func TestRefusedCommandIsAudited(t *testing.T) {
	store := openStore(t)
	n := startTestNode(t, store, Config{})
	mustSend(t, n, "acme", "c1", "create", 0)
	mustSend(t, n, "acme", "c1", "add", 2)
	_, err := send(t, n, "acme", "c1", "guard", 0, func(c *call.Command) {
		c.Actor, c.CorrelationID, c.Roles = "mallory", "corr-refused", []string{"clerk"}
	})
	if grains.CodeOf(err) != grains.CodeForbidden {
		t.Fatalf("guard without role: %v, want forbidden", err)
	}
	got, err := n.Get(context.Background(), "acme", "counter", "c1")
	if err != nil || got.Revision != 2 || value(t, got) != 2 {
		t.Fatalf("after the refusal: revision %d value %d (%v), want 2 and 2", got.Revision, value(t, got), err)
	}
	key := truth.Key{Tenant: "acme", Kind: "counter", ID: "c1"}
	trail, err := store.(truth.AuditTrailReader).AuditTrail(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) != 3 {
		t.Fatalf("trail has %d records, want create, add and the refusal: %+v", len(trail), trail)
	}
	r := trail[2]
	if r.Action != "guard" || r.Actor != "mallory" || r.Reason != "guard requires role boss" ||
		r.CorrelationID != "corr-refused" || r.Revision != 2 || r.Seq != 3 || string(r.Detail) != `{"outcome":"refused","code":"forbidden"}` {
		t.Fatalf("refusal record %+v", r)
	}
	// Allowed now: the commit chains after the refusal.
	mustSend(t, n, "acme", "c1", "guard", 0, func(c *call.Command) { c.Roles = []string{"boss"} })
	checked, head, err := truth.VerifyTenant(context.Background(), store.(truth.ChainReader), "acme", 0)
	if err != nil || checked != 4 || head.Seq != 4 {
		t.Fatalf("chain: %d checked, head %d, %v; want 4 verified", checked, head.Seq, err)
	}
	// Other errors are not audited.
	if _, err := send(t, n, "acme", "c1", "sub", 1000); grains.CodeOf(err) != grains.CodeInvalidTransition {
		t.Fatalf("sub below zero: %v", err)
	}
	if trail, _ := store.(truth.AuditTrailReader).AuditTrail(context.Background(), key); len(trail) != 4 {
		t.Fatalf("an invalid transition was audited: %d records", len(trail))
	}
	// An unsafe operator action refused by the domain is audited, with the
	// command's own reason.
	if _, err := send(t, n, "acme", "c1", "unsafe", 0, func(c *call.Command) {
		c.Actor, c.Payload = "olga", []byte(`{"n":0,"reason":"customer says it works"}`)
	}); grains.CodeOf(err) != grains.CodeBillingOutcomeUnknown {
		t.Fatalf("unsafe: %v", err)
	}
	trail, err = store.(truth.AuditTrailReader).AuditTrail(context.Background(), key)
	if err != nil || len(trail) != 5 {
		t.Fatalf("trail %d records (%v), want the unsafe refusal as the 5th", len(trail), err)
	}
	if r := trail[4]; r.Action != "unsafe" || r.Actor != "olga" || r.Reason != "the outcome is unknown" ||
		string(r.Detail) != `{"outcome":"refused","code":"billing_outcome_unknown","commandReason":"customer says it works"}` {
		t.Fatalf("unsafe refusal record %+v (detail %s)", r, r.Detail)
	}
}
