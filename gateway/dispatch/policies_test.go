package dispatch

import (
	"context"
	"net/http"
	"testing"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
)

// recorder is a Policies and Evidence that records what reached it.
type recorder struct{ calls []string }

func (r *recorder) ListPolicies(context.Context, grains.TenantID) ([]byte, error) {
	r.calls = append(r.calls, "list")
	return []byte(`{"active":0,"versions":[]}`), nil
}

func (r *recorder) GetPolicy(_ context.Context, _ grains.TenantID, v int) ([]byte, error) {
	r.calls = append(r.calls, "get")
	return []byte(`{}`), nil
}

func (r *recorder) PublishPolicy(_ context.Context, tenant grains.TenantID, actor, corr, key string, body []byte) (PolicyPublished, error) {
	r.calls = append(r.calls, "publish "+string(tenant)+" "+actor+" "+corr+" "+key+" "+string(body))
	return PolicyPublished{Version: 7, Doc: []byte(`{"version":7}`), Replayed: key != ""}, nil
}

func (r *recorder) EvidenceJSON(_ context.Context, tenant grains.TenantID, id string) ([]byte, error) {
	r.calls = append(r.calls, "evidence "+string(tenant)+" "+id)
	return []byte(`{}`), nil
}

// The gateway checks the roles of policy and evidence requests before
// anything reaches the stores, and shapes their replies.
func TestPolicyAndEvidenceRoles(t *testing.T) {
	g := fakegrains.New()
	rec := &recorder{}
	d, err := New(Deps{Sender: g, Reader: g, Policies: rec, Evidence: rec})
	if err != nil {
		t.Fatal(err)
	}
	req := func(roles []string, kind grains.Kind, command, id string) Request {
		return Request{Principal: auth.Principal{Subject: "u1", Tenant: "acme", Roles: roles}, Kind: kind, Command: command, ID: id,
			Payload: []byte(`{"rules":[]}`), CorrelationID: "c1", Instance: "/x"}
	}
	for _, c := range []struct {
		roles   []string
		kind    grains.Kind
		command string
		id      string
		status  int
	}{
		{[]string{"sales"}, KindApprovalPolicy, CommandList, "", http.StatusOK},
		{[]string{"approver:3"}, KindApprovalPolicy, CommandGet, "2", http.StatusOK},
		{[]string{"auditor"}, KindApprovalPolicy, CommandList, "", http.StatusOK},
		{[]string{"ops"}, KindApprovalPolicy, CommandList, "", http.StatusForbidden},
		{[]string{"sales", "approver"}, KindApprovalPolicy, CommandPublish, "", http.StatusForbidden},
		{[]string{"policy-admin"}, KindApprovalPolicy, CommandPublish, "", http.StatusCreated},
		{[]string{"policy-admin"}, KindApprovalPolicy, CommandGet, "02", http.StatusNotFound},
		{[]string{"policy-admin"}, KindApprovalPolicy, CommandGet, "0", http.StatusNotFound},
		{[]string{"policy-admin"}, KindApprovalPolicy, "delete", "", http.StatusNotFound},
		{[]string{"auditor"}, grains.KindQuote, CommandEvidence, "q-1", http.StatusOK},
		{[]string{"approver"}, grains.KindQuote, CommandEvidence, "q-1", http.StatusOK},
		{[]string{"policy-admin"}, grains.KindQuote, CommandEvidence, "q-1", http.StatusForbidden},
		{[]string{"auditor"}, grains.KindQuote, CommandEvidence, "no spaces", http.StatusBadRequest},
	} {
		rep := d.Do(context.Background(), req(c.roles, c.kind, c.command, c.id))
		if rep.Status != c.status {
			t.Errorf("%v %s.%s %q: status %d, want %d: %s", c.roles, c.kind, c.command, c.id, rep.Status, c.status, rep.Body)
		}
		if c.command == CommandPublish && rep.Status == http.StatusCreated && (rep.Location != "/v1/approval-policies/7" || rep.ID != "7") {
			t.Errorf("publish reply location %q id %q", rep.Location, rep.ID)
		}
	}
	want := []string{"list", "get", "list", `publish acme u1 c1  {"rules":[]}`, "evidence acme q-1", "evidence acme q-1"}
	if len(rec.calls) != len(want) {
		t.Fatalf("calls %q, want %q", rec.calls, want)
	}
	for i := range want {
		if rec.calls[i] != want[i] {
			t.Fatalf("call %d = %q, want %q", i, rec.calls[i], want[i])
		}
	}
	// The client's Idempotency-Key reaches the store in the client
	// namespace, and a replayed publish says so.
	keyed := req([]string{"policy-admin"}, KindApprovalPolicy, CommandPublish, "")
	keyed.IdempotencyKey = "pub-1"
	if rep := d.Do(context.Background(), keyed); rep.Status != http.StatusCreated || !rep.Replayed || rep.Location != "/v1/approval-policies/7" {
		t.Errorf("keyed publish = %+v", rep)
	}
	if last := rec.calls[len(rec.calls)-1]; last != `publish acme u1 c1 api:pub-1 {"rules":[]}` {
		t.Errorf("keyed publish call = %q", last)
	}
	// Without the stores, the endpoints are unavailable.
	bare, _ := New(Deps{Sender: g, Reader: g})
	for _, r := range []Request{req([]string{"auditor"}, KindApprovalPolicy, CommandList, ""), req([]string{"auditor"}, grains.KindQuote, CommandEvidence, "q-1")} {
		if rep := bare.Do(context.Background(), r); rep.Status != http.StatusServiceUnavailable {
			t.Errorf("%s.%s without a store: %d", r.Kind, r.Command, rep.Status)
		}
	}
}
