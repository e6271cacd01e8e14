package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
)

func openTestStore(t *testing.T) truth.Store {
	t.Helper()
	s, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type policyList struct {
	Active   int             `json:"active"`
	Versions []PolicySummary `json:"versions"`
}

func listOf(t *testing.T, p *policies, tenant grains.TenantID) policyList {
	t.Helper()
	b, err := p.ListPolicies(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	var l policyList
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// publishBody publishes body without an idempotency key.
func (p *policies) publishBody(ctx context.Context, tenant grains.TenantID, actor, correlationID string, body []byte) (int, []byte, error) {
	out, err := p.PublishPolicy(ctx, tenant, actor, correlationID, "", body)
	return out.Version, out.Doc, err
}

func rulesBody(rules ...approval.Rule) []byte {
	if rules == nil {
		rules = []approval.Rule{}
	}
	b, _ := json.Marshal(map[string]any{"rules": rules})
	return b
}

func TestSeedPolicyIsVersionOneOnce(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for range 2 {
		if err := SeedPolicy(ctx, st, DemoTenant, approval.DemoRules(), now); err != nil {
			t.Fatal(err)
		}
	}
	p := newPolicies(st)
	pol, err := p.Policy(ctx, DemoTenant)
	if err != nil || pol == nil || pol.Version != 1 || len(pol.Rules) != len(approval.DemoRules()) {
		t.Fatalf("demo policy %+v, %v; want version 1 with the demo rules", pol, err)
	}
	if pol, err := p.Policy(ctx, "other"); pol != nil || err != nil {
		t.Fatalf("tenant other: %+v, %v; want no policy", pol, err)
	}
	l := listOf(t, p, DemoTenant)
	if l.Active != 1 || len(l.Versions) != 1 || l.Versions[0].PublishedBy != "seed" || !l.Versions[0].PublishedAt.Equal(now) {
		t.Fatalf("list %+v", l)
	}
	if l := listOf(t, p, "other"); l.Active != 0 || l.Versions == nil || len(l.Versions) != 0 {
		t.Fatalf("list of a tenant without policies %+v", l)
	}
}

func TestPublishPolicyVersionsAndActivates(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	p := newPolicies(st)
	v, doc, err := p.publishBody(ctx, "acme", "alice", "corr-1", rulesBody(approval.Rule{Name: "all", Expr: "true", Level: 2}))
	if err != nil || v != 1 {
		t.Fatalf("publish: %d, %v", v, err)
	}
	var got policyDoc
	if err := json.Unmarshal(doc, &got); err != nil || got.Version != 1 || !got.Active || got.PublishedBy != "alice" || len(got.Rules) != 1 {
		t.Fatalf("published doc %s (%v)", doc, err)
	}
	if v, _, err = p.publishBody(ctx, "acme", "bob", "corr-2", rulesBody()); err != nil || v != 2 {
		t.Fatalf("second publish: %d, %v", v, err)
	}
	pol, err := p.Policy(ctx, "acme")
	if err != nil || pol.Version != 2 || len(pol.Rules) != 0 {
		t.Fatalf("active policy %+v, %v; want version 2 without rules", pol, err)
	}
	l := listOf(t, p, "acme")
	if l.Active != 2 || len(l.Versions) != 2 || l.Versions[0].Version != 2 || l.Versions[1].Version != 1 || l.Versions[1].RuleCount != 1 {
		t.Fatalf("list %+v, want 2 then 1", l)
	}
	b, err := p.GetPolicy(ctx, "acme", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil || got.Version != 1 || got.Active || got.Rules[0].Level != 2 {
		t.Fatalf("version 1: %s", b)
	}
	for _, v := range []int{0, 3} {
		if _, err := p.GetPolicy(ctx, "acme", v); grains.CodeOf(err) != grains.CodeNotFound {
			t.Fatalf("version %d: %v, want not_found", v, err)
		}
	}
	// Publish and activation are audited, on the version and the pointer.
	trail, err := st.(truth.AuditTrailReader).AuditTrail(ctx, policyKey("acme", policyActiveID))
	if err != nil || len(trail) != 2 || trail[0].Action != ActionActivatePolicy || trail[1].Actor != "bob" || trail[1].CorrelationID != "corr-2" {
		t.Fatalf("pointer trail %+v, %v", trail, err)
	}
	trail, err = st.(truth.AuditTrailReader).AuditTrail(ctx, policyVersionKey("acme", 1))
	if err != nil || len(trail) != 1 || trail[0].Action != ActionPublishPolicy || trail[0].Actor != "alice" {
		t.Fatalf("version 1 trail %+v, %v", trail, err)
	}
}

func TestPublishPolicyReportsEveryProblem(t *testing.T) {
	p := newPolicies(openTestStore(t))
	_, _, err := p.publishBody(context.Background(), "acme", "alice", "", rulesBody(
		approval.Rule{Name: "ok", Expr: "true", Level: 1},
		approval.Rule{Name: "bad", Expr: "oneTimeTotal >", Level: 1},
		approval.Rule{Name: "ok", Expr: "1", Level: 12},
	))
	var de *grains.Error
	if !errors.As(err, &de) || de.Code != grains.CodeValidation {
		t.Fatalf("publish of bad rules: %v, want validation_failed", err)
	}
	var ptrs []string
	for _, v := range de.Violations {
		ptrs = append(ptrs, v.Pointer+" "+v.Code)
	}
	want := "[/rules/1/expr compile /rules/2/name duplicate /rules/2/level range /rules/2/expr type]"
	if fmt.Sprint(ptrs) != want {
		t.Fatalf("violations %v, want %s", ptrs, want)
	}
	for _, body := range []string{`{}`, `{"rules": [], "version": 3}`, `{"rules": {}}`} {
		if _, _, err := p.publishBody(context.Background(), "acme", "alice", "", []byte(body)); grains.CodeOf(err) != grains.CodeValidation && grains.CodeOf(err) != grains.CodeBadRequest {
			t.Fatalf("publish %s: %v, want a refusal", body, err)
		}
	}
	if l := listOf(t, p, "acme"); l.Active != 0 {
		t.Fatalf("a refused publish left version %d", l.Active)
	}
}

// Concurrent publishers get distinct, gapless versions, and the pointer
// ends at the last.
func TestConcurrentPublishesAreGapless(t *testing.T) {
	st := openTestStore(t)
	const n = 6
	var wg sync.WaitGroup
	got := make(chan int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := newPolicies(st).publishBody(context.Background(), "acme", fmt.Sprintf("p%d", i), "", rulesBody(approval.Rule{Name: "r", Expr: "true", Level: 1 + i%3}))
			if err != nil {
				t.Error(err)
				return
			}
			got <- v
		}()
	}
	wg.Wait()
	close(got)
	seen := map[int]bool{}
	for v := range got {
		if seen[v] {
			t.Fatalf("version %d published twice", v)
		}
		seen[v] = true
	}
	l := listOf(t, newPolicies(st), "acme")
	if len(seen) != n || l.Active != n || len(l.Versions) != n {
		t.Fatalf("versions %v, list %+v; want 1..%d", seen, l, n)
	}
	for i, s := range l.Versions {
		if s.Version != n-i {
			t.Fatalf("list %+v not gapless", l)
		}
	}
}

// A version written but never activated (its publisher died between the
// two commits) is activated by the next publish, which then takes the
// following number.
func TestPublishActivatesAnOrphanVersionFirst(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	p := newPolicies(st)
	if _, _, err := p.publishBody(ctx, "acme", "alice", "", rulesBody()); err != nil {
		t.Fatal(err)
	}
	orphan := PolicyVersion{Version: 2, Rules: []approval.Rule{{Name: "o", Expr: "true", Level: 3}}, PublishedBy: "ghost", PublishedAt: truth.AuditTime(time.Now())}
	if err := p.writeVersion(ctx, "acme", orphan, "", nil); err != nil {
		t.Fatal(err)
	}
	if l := listOf(t, p, "acme"); l.Active != 1 {
		t.Fatalf("orphan active too early: %+v", l)
	}
	v, _, err := p.publishBody(ctx, "acme", "bob", "", rulesBody(approval.Rule{Name: "b", Expr: "true", Level: 1}))
	if err != nil || v != 3 {
		t.Fatalf("publish after an orphan: %d, %v; want 3", v, err)
	}
	l := listOf(t, p, "acme")
	if l.Active != 3 || len(l.Versions) != 3 || l.Versions[1].PublishedBy != "ghost" {
		t.Fatalf("list %+v; want 3, ghost's 2, 1", l)
	}
}

// A publish with an idempotency key records it with the version: the same
// key and body again answer the first reply, replayed, and publish nothing;
// the key with another body, or a key another command recorded, is
// idempotency_key_reused. Keys are per tenant.
func TestPublishPolicyIdempotencyKey(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	p := newPolicies(st)
	body := rulesBody(approval.Rule{Name: "all", Expr: "true", Level: 2})
	first, err := p.PublishPolicy(ctx, "acme", "alice", "corr-1", "api:k1", body)
	if err != nil || first.Version != 1 || first.Replayed {
		t.Fatalf("first publish: %+v, %v", first, err)
	}
	p.now = func() time.Time { return time.Now().Add(time.Hour) }
	again, err := p.PublishPolicy(ctx, "acme", "bob", "corr-2", "api:k1", body)
	if err != nil || again.Version != 1 || !again.Replayed || string(again.Doc) != string(first.Doc) {
		t.Fatalf("repeat: %+v, %v; want version 1 replayed with the first reply %s", again, err, first.Doc)
	}
	if _, err := p.PublishPolicy(ctx, "acme", "alice", "", "api:k1", rulesBody()); grains.CodeOf(err) != grains.CodeIdempotencyKeyReused {
		t.Fatalf("same key, other body: %v; want idempotency_key_reused", err)
	}
	if l := listOf(t, p, "acme"); l.Active != 1 || len(l.Versions) != 1 {
		t.Fatalf("list %+v; want one version", l)
	}
	// Another tenant's key of the same name is its own.
	if out, err := p.PublishPolicy(ctx, "other", "olga", "", "api:k1", rulesBody()); err != nil || out.Version != 1 || out.Replayed {
		t.Fatalf("other tenant: %+v, %v", out, err)
	}
	// A key recorded by another command (a grain's) is not a publish's.
	res, err := st.Commit(ctx, []truth.Commit{{
		Snapshot:    truth.Snapshot{Key: truth.Key{Tenant: "acme", Kind: "quote", ID: "q-1"}, Revision: 1, State: []byte(`{}`)},
		Idempotency: &truth.Idempotency{Tenant: "acme", Key: "api:q", Aggregate: truth.Key{Tenant: "acme", Kind: "quote", ID: "q-1"}, Command: "create", Revision: 1, Response: []byte(`{}`)},
	}})
	if err != nil || res[0] != nil {
		t.Fatalf("quote commit: %v %v", err, res)
	}
	if _, err := p.PublishPolicy(ctx, "acme", "alice", "", "api:q", body); grains.CodeOf(err) != grains.CodeIdempotencyKeyReused {
		t.Fatalf("a quote's key: %v; want idempotency_key_reused", err)
	}
	// Concurrent first attempts with one key publish one version.
	var wg sync.WaitGroup
	outs := make([]int, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := newPolicies(st).PublishPolicy(ctx, "acme", "carol", "", "api:k2", rulesBody())
			if err != nil {
				t.Error(err)
			}
			outs[i] = out.Version
		}()
	}
	wg.Wait()
	for _, v := range outs {
		if v != 2 {
			t.Fatalf("concurrent keyed publishes got versions %v; want all 2", outs)
		}
	}
	if l := listOf(t, p, "acme"); l.Active != 2 || len(l.Versions) != 2 {
		t.Fatalf("list %+v; want two versions", l)
	}
}

// A keyed publish whose publisher stopped before activating its version is
// activated by its repeat, which replays the first reply.
func TestPublishPolicyRepeatActivatesItsVersion(t *testing.T) {
	st := openTestStore(t)
	ctx := context.Background()
	p := newPolicies(st)
	body := rulesBody()
	pv := PolicyVersion{Version: 1, Rules: []approval.Rule{}, PublishedBy: "alice", PublishedAt: truth.AuditTime(time.Now())}
	doc, _ := json.Marshal(policyDoc{PolicyVersion: pv, Active: true})
	if err := p.writeVersion(ctx, "acme", pv, "", &truth.Idempotency{Tenant: "acme", Key: "api:k", Aggregate: policyVersionKey("acme", 1),
		Command: policyPublishCommand, RequestHash: policyRequestHash(body), Revision: 1, Response: doc}); err != nil {
		t.Fatal(err)
	}
	if l := listOf(t, p, "acme"); l.Active != 0 {
		t.Fatalf("active before the repeat: %+v", l)
	}
	out, err := p.PublishPolicy(ctx, "acme", "alice", "", "api:k", body)
	if err != nil || out.Version != 1 || !out.Replayed {
		t.Fatalf("repeat: %+v, %v", out, err)
	}
	if l := listOf(t, p, "acme"); l.Active != 1 || len(l.Versions) != 1 {
		t.Fatalf("list %+v; want version 1 active", l)
	}
}
