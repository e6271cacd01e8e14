package dispatch

import (
	"context"
	"net/http"
	"testing"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
)

// fakeHub records the calls it gets.
type fakeHub struct {
	calls []string
}

func (h *fakeHub) Subscribe(_ context.Context, tenant grains.TenantID, actor, key string, body []byte) ([]byte, string, bool, error) {
	h.calls = append(h.calls, "subscribe "+string(tenant)+" "+actor+" "+key+" "+string(body))
	return []byte(`{"id":"hub-1"}`), "hub-1", key != "", nil
}

func (h *fakeHub) SubscriptionsJSON(_ context.Context, tenant grains.TenantID) ([]byte, error) {
	h.calls = append(h.calls, "list "+string(tenant))
	return []byte(`{"items":[]}`), nil
}

func (h *fakeHub) SubscriptionJSON(_ context.Context, tenant grains.TenantID, id string) ([]byte, error) {
	h.calls = append(h.calls, "get "+string(tenant)+" "+id)
	return nil, grains.Errorf(grains.CodeNotFound, "no subscription %s", id)
}

func (h *fakeHub) Unsubscribe(_ context.Context, tenant grains.TenantID, actor, id string) error {
	h.calls = append(h.calls, "delete "+string(tenant)+" "+actor+" "+id)
	return nil
}

func TestHubCommands(t *testing.T) {
	g := fakegrains.New()
	h := &fakeHub{}
	d, err := New(Deps{Sender: g, Reader: g, Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	none, _ := New(Deps{Sender: g, Reader: g})
	integ := auth.Principal{Subject: "ci", Tenant: "t1", Roles: []string{RoleIntegration}}
	sales := auth.Principal{Subject: "s", Tenant: "t1", Roles: []string{"sales", "ops"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		d          *Dispatcher
		req        Request
		wantStatus int
		wantCode   grains.Code
		wantCall   string
	}{
		{"create", d, Request{Principal: integ, Kind: KindHub, Command: CommandCreate, Payload: []byte(`{"callback":"x"}`)},
			http.StatusCreated, "", `subscribe t1 ci  {"callback":"x"}`},
		{"create with a key", d, Request{Principal: integ, Kind: KindHub, Command: CommandCreate, Payload: []byte(`{"callback":"x"}`), IdempotencyKey: "k-1"},
			http.StatusCreated, "", `subscribe t1 ci api:k-1 {"callback":"x"}`},
		{"create needs an object", d, Request{Principal: integ, Kind: KindHub, Command: CommandCreate, Payload: []byte(`[1]`)},
			http.StatusBadRequest, grains.CodeBadRequest, ""},
		{"list", d, Request{Principal: integ, Kind: KindHub, Command: CommandList}, http.StatusOK, "", "list t1"},
		{"get not found", d, Request{Principal: integ, Kind: KindHub, Command: CommandGet, ID: "hub-9"},
			http.StatusNotFound, grains.CodeNotFound, "get t1 hub-9"},
		{"get bad id", d, Request{Principal: integ, Kind: KindHub, Command: CommandGet, ID: "a/b"},
			http.StatusBadRequest, grains.CodeBadRequest, ""},
		{"delete", d, Request{Principal: integ, Kind: KindHub, Command: CommandDelete, ID: "hub-1"},
			http.StatusNoContent, "", "delete t1 ci hub-1"},
		{"sales and ops may not", d, Request{Principal: sales, Kind: KindHub, Command: CommandList},
			http.StatusForbidden, grains.CodeForbidden, ""},
		{"unknown command", d, Request{Principal: integ, Kind: KindHub, Command: "submit"},
			http.StatusNotFound, grains.CodeNotFound, ""},
		{"no hub configured", none, Request{Principal: integ, Kind: KindHub, Command: CommandList},
			http.StatusServiceUnavailable, grains.CodeUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.calls = nil
			rep := tc.d.Do(ctx, tc.req)
			if rep.Status != tc.wantStatus || rep.Code != tc.wantCode {
				t.Fatalf("reply %d %q (%s), want %d %q", rep.Status, rep.Code, rep.Body, tc.wantStatus, tc.wantCode)
			}
			var call string
			if len(h.calls) > 0 {
				call = h.calls[0]
			}
			if call != tc.wantCall {
				t.Fatalf("hub call %q, want %q", call, tc.wantCall)
			}
		})
	}
	if rep := d.Do(ctx, Request{Principal: integ, Kind: KindHub, Command: CommandCreate, Payload: []byte(`{}`)}); rep.Location != "/v1/hub/hub-1" || rep.Replayed {
		t.Fatalf("Location %q replayed %v", rep.Location, rep.Replayed)
	}
	// The client's key reaches the hub in the client namespace, and a
	// replayed create says so.
	if rep := d.Do(ctx, Request{Principal: integ, Kind: KindHub, Command: CommandCreate, Payload: []byte(`{}`), IdempotencyKey: "k-1"}); rep.Location != "/v1/hub/hub-1" || !rep.Replayed {
		t.Fatalf("keyed create: Location %q replayed %v", rep.Location, rep.Replayed)
	}
}
