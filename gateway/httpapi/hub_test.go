package httpapi

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/streams/hub"
)

// POST /v1/hub takes an Idempotency-Key: the repeat is 201 with the first
// reply (same Location and body, secret included) and Idempotent-Replayed;
// the key on another body is 422 idempotency_key_reused; a malformed key
// is 400 and creates nothing.
func TestHubSubscribeIdempotencyKey(t *testing.T) {
	st, err := embedded.Open(embedded.Config{Dir: filepath.Join(t.TempDir(), "truth")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, err := hub.NewRegistry(st, hub.RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(_ *Config, d *Deps) { d.Hub = reg })
	tok, err := auth.Mint(e.priv, auth.Claims{Subject: "ci", Tenant: "demo", Roles: []string{dispatch.RoleIntegration}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	authz := "Authorization: Bearer " + tok
	body := `{"callback":"https://hooks.example.com/orders","query":""}`

	expectProblem(t, e.do("POST", "/v1/hub", body, authz, "Idempotency-Key: "+strings.Repeat("k", 256)), http.StatusBadRequest, grains.CodeBadRequest)
	first := e.do("POST", "/v1/hub", body, authz, "Idempotency-Key: sub-1")
	created := expect(t, first, http.StatusCreated)
	if first.Header().Get(HeaderReplayed) != "" || created["secret"] == nil || first.Header().Get("Location") != "/v1/hub/"+created["id"].(string) {
		t.Fatalf("first subscribe: %v %s", first.Header(), first.Body)
	}
	again := e.do("POST", "/v1/hub", body, authz, "Idempotency-Key: sub-1")
	expect(t, again, http.StatusCreated)
	if again.Header().Get(HeaderReplayed) != "true" || again.Header().Get("Location") != first.Header().Get("Location") || again.Body.String() != first.Body.String() {
		t.Fatalf("repeat: %v %s; want the first reply %s", again.Header(), again.Body, first.Body)
	}
	expectProblem(t, e.do("POST", "/v1/hub", `{"callback":"https://hooks.example.com/other","query":""}`, authz, "Idempotency-Key: sub-1"),
		http.StatusUnprocessableEntity, grains.CodeIdempotencyKeyReused)
	if subs, err := reg.List(t.Context(), "demo"); err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions %+v, %v; want one", subs, err)
	}
}
