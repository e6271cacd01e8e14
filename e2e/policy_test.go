package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/platform"
)

type policyListView struct {
	Active   int `json:"active"`
	Versions []struct {
		Version     int    `json:"version"`
		PublishedBy string `json:"publishedBy"`
		RuleCount   int    `json:"ruleCount"`
	} `json:"versions"`
}

type policyView struct {
	Version int  `json:"version"`
	Active  bool `json:"active"`
	Rules   []struct {
		Name  string `json:"name"`
		Expr  string `json:"expr"`
		Level int    `json:"level"`
	} `json:"rules"`
	PublishedBy string `json:"publishedBy"`
}

func rules(levels ...int) map[string]any {
	rs := []map[string]any{}
	for i, l := range levels {
		rs = append(rs, map[string]any{"name": fmt.Sprintf("r%d", i), "expr": "true", "level": l})
	}
	return map[string]any{"rules": rs}
}

// Publishing a policy version changes the next submission only: a quote
// submitted under the earlier version is approved with exactly the levels
// pinned then, over HTTP and NATS alike.
func TestApprovalPolicyVersionsPinSubmittedQuotes(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		admin := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "policy-admin"))
		adminNATS := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.token(platform.DemoTenant, "policy-admin"))
		sales := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "sales"))
		approver := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "approver:3"))
		offering := firstOffering(t, sales)

		// The demo tenant's seeded policy is version 1.
		var l policyListView
		admin.request(t, "GET", "/v1/approval-policies", nil, opts{}).expect(t, "list policies", 200).decode(t, &l)
		if l.Active != 1 || len(l.Versions) != 1 || l.Versions[0].PublishedBy != "seed" {
			t.Fatalf("seeded policies %+v", l)
		}

		// Publish v2 (two levels for every quote) over HTTP, v3 (one
		// level) over NATS after a quote was submitted under v2.
		r := admin.request(t, "POST", "/v1/approval-policies", rules(1, 2), opts{}).expect(t, "publish v2", 201)
		var pv policyView
		r.decode(t, &pv)
		if pv.Version != 2 || !pv.Active || r.Header["Location"] != "/v1/approval-policies/2" || pv.PublishedBy != "e2e-demo" {
			t.Fatalf("published %+v location %q", pv, r.Header["Location"])
		}
		inFlight := toPending(t, sales, offering)
		var q quoteView
		sales.do(t, grains.KindQuote, "get", inFlight, nil, opts{}).expect(t, "get", 200).decode(t, &q)
		if q.PolicyVersion != 2 || q.RequiredLevel != 2 {
			t.Fatalf("quote submitted under v2: policy %d level %d", q.PolicyVersion, q.RequiredLevel)
		}
		pr := adminNATS.do(t, dispatch.KindApprovalPolicy, "publish", "", rules(1), opts{}).expect(t, "publish v3 over NATS", 201)
		pr.decode(t, &pv)
		if pv.Version != 3 || pr.ID != "3" {
			t.Fatalf("NATS publish: %+v id %q", pv, pr.ID)
		}

		// The in-flight quote still needs both of v2's levels.
		approver.do(t, grains.KindQuote, "approve", inFlight, nil, opts{}).expect(t, "approve level 1", 200).decode(t, &q)
		if q.Status != quote.StatusPending || len(q.Approvals) != 1 || q.RequiredLevel != 2 {
			t.Fatalf("after level 1 under v2: status %q approvals %d required %d", q.Status, len(q.Approvals), q.RequiredLevel)
		}
		// An approver of level 1 is refused level 2, and the refusal is
		// audited without touching the quote.
		before := sales.do(t, grains.KindQuote, "get", inFlight, nil, opts{}).expect(t, "get", 200)
		low := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "approver"))
		low.do(t, grains.KindQuote, "approve", inFlight, nil, opts{}).expectProblem(t, "approve level 2 as approver:1", 403, "forbidden")
		after := sales.do(t, grains.KindQuote, "get", inFlight, nil, opts{}).expect(t, "get", 200)
		if after.ETag != before.ETag || !bytes.Equal(after.Body, before.Body) {
			t.Fatalf("the refused approval changed the quote: etag %s -> %s", before.ETag, after.ETag)
		}
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindQuote), ID: inFlight})
		var refused []truth.Audit
		for _, a := range trail {
			if string(a.Detail) == `{"outcome":"refused","code":"forbidden"}` {
				refused = append(refused, a)
			}
		}
		if len(refused) != 1 || refused[0].Action != quote.CmdApprove || refused[0].Actor != "e2e-demo" ||
			!strings.Contains(refused[0].Reason, "approver:2") || fmt.Sprintf(`"%d"`, refused[0].Revision) != before.ETag {
			t.Fatalf("refusal records %+v", refused)
		}
		if _, _, err := truth.VerifyTenant(context.Background(), e.p.Store.(truth.ChainReader), string(platform.DemoTenant), 0); err != nil {
			t.Fatalf("chain after the refusal: %v", err)
		}
		approver.do(t, grains.KindQuote, "approve", inFlight, nil, opts{}).expect(t, "approve level 2", 200).decode(t, &q)
		if q.Status != quote.StatusApproved || len(q.Approvals) != 2 {
			t.Fatalf("after level 2 under v2: status %q approvals %+v", q.Status, q.Approvals)
		}
		for i, a := range q.Approvals {
			if a.Level != i+1 || a.PolicyVersion != 2 {
				t.Fatalf("approval %d = %+v, want level %d under policy 2", i, a, i+1)
			}
		}
		// A quote submitted now gets v3: one level.
		fresh := toPending(t, sales, offering)
		approver.do(t, grains.KindQuote, "approve", fresh, nil, opts{}).expect(t, "approve under v3", 200).decode(t, &q)
		if q.PolicyVersion != 3 || q.RequiredLevel != 1 || q.Status != quote.StatusApproved {
			t.Fatalf("quote submitted under v3: policy %d level %d status %q", q.PolicyVersion, q.RequiredLevel, q.Status)
		}

		// Reads over both doors; errors.
		adminNATS.do(t, dispatch.KindApprovalPolicy, "get", "2", nil, opts{}).expect(t, "NATS get v2", 200).decode(t, &pv)
		if pv.Version != 2 || pv.Active || len(pv.Rules) != 2 || pv.Rules[1].Level != 2 {
			t.Fatalf("v2 over NATS: %+v", pv)
		}
		adminNATS.do(t, dispatch.KindApprovalPolicy, "list", "", nil, opts{}).expect(t, "NATS list", 200).decode(t, &l)
		if l.Active != 3 || len(l.Versions) != 3 || l.Versions[0].Version != 3 || l.Versions[0].RuleCount != 1 {
			t.Fatalf("list over NATS %+v", l)
		}
		admin.request(t, "GET", "/v1/approval-policies/4", nil, opts{}).expectProblem(t, "unknown version", 404, "not_found")
		sales.request(t, "POST", "/v1/approval-policies", rules(1), opts{}).expectProblem(t, "publish without policy-admin", 403, "forbidden")
		newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "orders")).request(t, "GET", "/v1/approval-policies", nil, opts{}).
			expectProblem(t, "list without a reading role", 403, "forbidden")
		bad := admin.request(t, "POST", "/v1/approval-policies", map[string]any{"rules": []map[string]any{
			{"name": "a", "expr": "true", "level": 1}, {"name": "b", "expr": "oneTimeTotal >", "level": 1},
		}}, opts{})
		bad.expectProblem(t, "rules that do not compile", 422, "validation_failed")
		var vp struct {
			Violations []struct{ Pointer string } `json:"violations"`
		}
		bad.decode(t, &vp)
		if len(vp.Violations) != 1 || vp.Violations[0].Pointer != "/rules/1/expr" {
			t.Fatalf("violations %+v, want one at /rules/1/expr", vp.Violations)
		}
		admin.request(t, "GET", "/v1/approval-policies", nil, opts{}).expect(t, "list", 200).decode(t, &l)
		if l.Active != 3 {
			t.Fatalf("a refused publish moved the active version to %d", l.Active)
		}
	})
}

// A publish with an Idempotency-Key publishes once: the same key and body
// again, over HTTP or NATS, answer the first reply with Idempotent-Replayed;
// the key with another body is 422 idempotency_key_reused.
func TestApprovalPolicyPublishIdempotencyKey(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		admin := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "policy-admin"))
		adminNATS := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.token(platform.DemoTenant, "policy-admin"))

		first := admin.request(t, "POST", "/v1/approval-policies", rules(1, 2), opts{idemKey: "pub-1"}).expect(t, "publish v2", 201)
		if first.Replayed || first.Header["Location"] != "/v1/approval-policies/2" {
			t.Fatalf("first publish: replayed %v location %q", first.Replayed, first.Header["Location"])
		}
		again := admin.request(t, "POST", "/v1/approval-policies", rules(1, 2), opts{idemKey: "pub-1"}).expect(t, "repeat over HTTP", 201)
		if !again.Replayed || again.Header["Location"] != "/v1/approval-policies/2" || !bytes.Equal(again.Body, first.Body) {
			t.Fatalf("HTTP repeat: replayed %v location %q body %s, want the first reply %s", again.Replayed, again.Header["Location"], again.Body, first.Body)
		}
		nr := adminNATS.do(t, dispatch.KindApprovalPolicy, "publish", "", rules(1, 2), opts{idemKey: "pub-1"}).expect(t, "repeat over NATS", 201)
		if !nr.Replayed || nr.ID != "2" || !bytes.Equal(nr.Body, first.Body) {
			t.Fatalf("NATS repeat: replayed %v id %q body %s", nr.Replayed, nr.ID, nr.Body)
		}
		admin.request(t, "POST", "/v1/approval-policies", rules(3), opts{idemKey: "pub-1"}).expectProblem(t, "same key, other body", 422, "idempotency_key_reused")
		adminNATS.do(t, dispatch.KindApprovalPolicy, "publish", "", rules(3), opts{idemKey: "pub-1"}).expectProblem(t, "same key, other body over NATS", 422, "idempotency_key_reused")

		var l policyListView
		admin.request(t, "GET", "/v1/approval-policies", nil, opts{}).expect(t, "list policies", 200).decode(t, &l)
		if l.Active != 2 || len(l.Versions) != 2 {
			t.Fatalf("policies after repeats %+v; want the seed and one publish", l)
		}
	})
}
