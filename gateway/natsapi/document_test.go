package natsapi

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/quote"
)

// putApprovedQuote stores an approved quote, built by the quote domain, in
// the fake grains.
func putApprovedQuote(t *testing.T, e *env, tenant grains.TenantID, id string) {
	t.Helper()
	genv := grains.Env{Tenant: tenant, ID: id, Actor: "alice", Roles: []string{"sales", "approver"},
		Now: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), Catalog: catalog.Demo()}
	var s quote.State
	for _, c := range [][2]string{
		{"create", `{"customerId":"c-1","customerName":"ACME Corp","currency":"EUR"}`},
		{"addLine", `{"offeringId":"dia-1g","quantity":1}`},
		{"price", `{}`}, {"submit", `{}`}, {"approve", `{}`},
	} {
		cmd, err := quote.DecodeCommand(c[0], []byte(c[1]))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := quote.Decide(s, cmd, genv)
		if err != nil {
			t.Fatalf("%s: %v", c[0], err)
		}
		s = quote.Behavior.Fold(s, evs)
	}
	var m map[string]any
	b, _ := json.Marshal(s)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	e.g.Put(tenant, grains.KindQuote, id, m)
}

// Over NATS a quote's document is rendered and attached (renderDocument)
// and its metadata read (document); the bytes are served over HTTP only.
func TestQuoteDocument(t *testing.T) {
	st, err := embedded.Open(embedded.Config{Dir: filepath.Join(t.TempDir(), "truth")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvDeps(t, embeddedNATS(t), func(d *Deps) { d.Artifacts = st })
	putApprovedQuote(t, e, "demo", "q-n1")
	idH := HeaderID + ": q-n1"

	expectProblem(t, e.req("demo.quote.document", "", idH), 404, grains.CodeNotFound)
	r := e.req("demo.quote.renderDocument", "", idH)
	m := expect(t, r, 201)
	sha, _ := m["sha256"].(string)
	if len(sha) != 64 || m["revision"] != float64(1) || m["href"] != dispatch.ArtifactHref(sha) || r.Header.Get(HeaderID) != "q-n1" {
		t.Fatalf("renderDocument = %v headers %v", m, r.Header)
	}
	if again := expect(t, e.req("demo.quote.renderDocument", `{"revision":1}`, idH), 200); again["sha256"] != sha {
		t.Fatalf("second render = %v, want sha %s", again, sha)
	}
	meta := expect(t, e.req("demo.quote.document", "", idH), 200)
	if meta["sha256"] != sha || meta["mediaType"] != "application/pdf" || meta["attachedBy"] != "bob" {
		t.Fatalf("document = %v", meta)
	}
	a, err := st.GetArtifact(t.Context(), "demo", sha)
	if err != nil || a.CreatedBy != "bob" || len(a.Bytes) == 0 {
		t.Fatalf("stored artifact: %v, by %q", err, a.CreatedBy)
	}
	// Another tenant reaches neither.
	acme := "Authorization: Bearer " + e.token("acme")
	expectProblem(t, e.req("acme.quote.document", "", idH, acme), 404, grains.CodeNotFound)
	expectProblem(t, e.req("acme.quote.renderDocument", "", idH, acme), 404, grains.CodeNotFound)
	expectProblem(t, e.req("demo.quote.renderDocument", `{"revision":3}`, idH), 409, grains.CodeStaleRevision)
}
