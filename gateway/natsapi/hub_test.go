package natsapi

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/streams/hub"
)

// hub.create takes an Idempotency-Key: the repeat is 201 with the first
// reply (same id and body, secret included) and Idempotent-Replayed; the
// key on another body is 422 idempotency_key_reused.
func TestHubCreateIdempotencyKey(t *testing.T) {
	st, err := embedded.Open(embedded.Config{Dir: filepath.Join(t.TempDir(), "truth")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, err := hub.NewRegistry(st, hub.RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDeps(t, embeddedNATS(t), func(d *Deps) { d.Hub = reg })
	tok, err := auth.Mint(e.priv, auth.Claims{Subject: "ci", Tenant: "demo", Roles: []string{dispatch.RoleIntegration}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	authz := HeaderAuthorization + ": Bearer " + tok
	body := `{"callback":"https://hooks.example.com/orders","query":""}`

	first := e.req("demo.hub.create", body, authz, "Idempotency-Key: sub-1")
	created := expect(t, first, 201)
	if first.Header.Get(HeaderReplayed) != "" || created["secret"] == nil || first.Header.Get(HeaderID) != created["id"] {
		t.Fatalf("first create: %v %s", first.Header, first.Data)
	}
	again := e.req("demo.hub.create", body, authz, "Idempotency-Key: sub-1")
	expect(t, again, 201)
	if again.Header.Get(HeaderReplayed) != "true" || again.Header.Get(HeaderID) != first.Header.Get(HeaderID) || string(again.Data) != string(first.Data) {
		t.Fatalf("repeat: %v %s; want the first reply %s", again.Header, again.Data, first.Data)
	}
	expectProblem(t, e.req("demo.hub.create", `{"callback":"https://hooks.example.com/other","query":""}`, authz, "Idempotency-Key: sub-1"),
		422, grains.CodeIdempotencyKeyReused)
	if subs, err := reg.List(t.Context(), "demo"); err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions %+v, %v; want one", subs, err)
	}
}
