package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
)

// newDocEnv is an env whose artifacts live in an embedded truth store.
func newDocEnv(t *testing.T) *env {
	t.Helper()
	st, err := embedded.Open(embedded.Config{Dir: filepath.Join(t.TempDir(), "truth")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnv(t, func(_ *Config, d *Deps) {
		d.Artifacts = st
		d.Seller = func(tenant grains.TenantID) string { return "Seller of " + string(tenant) }
	})
}

var approvedCmds = [][2]string{
	{"create", `{"customerId":"c-1","customerName":"ACME Corp","currency":"EUR"}`},
	{"addLine", `{"offeringId":"dia-1g","quantity":2}`},
	{"price", `{}`},
	{"submit", `{}`},
	{"approve", `{}`},
}

func (e *env) tokenWith(tenant grains.TenantID, roles ...string) string {
	e.t.Helper()
	tok, err := auth.Mint(e.priv, auth.Claims{Subject: "bob", Tenant: tenant, Roles: roles}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func TestQuoteDocumentJourney(t *testing.T) {
	e := newDocEnv(t)
	putQuote(t, e, "demo", "q-doc", approvedCmds...)

	w := e.do("POST", "/v1/quotes/q-doc/document", "")
	m := expect(t, w, 201)
	sha, _ := m["sha256"].(string)
	if len(sha) != 64 || m["revision"] != float64(1) || m["mediaType"] != "application/pdf" ||
		m["href"] != "/v1/artifacts/"+sha || m["artifactId"] != sha || m["quoteId"] != "q-doc" || m["size"] == nil {
		t.Fatalf("render reply = %v", m)
	}
	if w.Header().Get("Location") != "/v1/artifacts/"+sha {
		t.Errorf("Location = %q", w.Header().Get("Location"))
	}
	sent := e.g.Sent()
	if len(sent) != 1 || sent[0].Name != "attachDocument" || sent[0].Actor != "alice" ||
		sent[0].IdempotencyKey != dispatch.DocumentIdempotencyKey("q-doc", 1, sha) {
		t.Fatalf("sent %+v", sent)
	}

	// The same inputs again: the same document, answered from the first
	// attachment.
	again := expect(t, e.do("POST", "/v1/quotes/q-doc/document", `{"revision":1}`), 200)
	if again["sha256"] != sha {
		t.Fatalf("second render %v, want sha %s", again["sha256"], sha)
	}

	// The bytes, with their digest.
	w = e.do("GET", "/v1/quotes/q-doc/document", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(w.Body.Bytes(), []byte("%PDF-")) {
		t.Fatalf("GET document: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String()[:min(20, w.Body.Len())])
	}
	sum := sha256.Sum256(w.Body.Bytes())
	if hex.EncodeToString(sum[:]) != sha {
		t.Fatalf("served bytes hash to %x, want %s", sum, sha)
	}
	if got, want := w.Header().Get("Repr-Digest"), "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":"; got != want {
		t.Errorf("Repr-Digest = %q, want %q", got, want)
	}
	if w.Header().Get("ETag") != strconv.Quote(sha) || w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
		t.Errorf("ETag %q, Content-Length %q", w.Header().Get("ETag"), w.Header().Get("Content-Length"))
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Cache-Control") == "" {
		t.Errorf("artifact headers %v", w.Header())
	}
	if cd := w.Header().Get("Content-Disposition"); cd != `inline; filename="quote-q-doc-r1.pdf"` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	doc := w.Body.Bytes()
	if nm := e.do("GET", "/v1/quotes/q-doc/document", "", "If-None-Match: "+strconv.Quote(sha)); nm.Code != 304 || nm.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d, %d bytes", nm.Code, nm.Body.Len())
	}
	if !bytes.Contains(doc, []byte("Seller of demo")) || !bytes.Contains(doc, []byte("q-doc")) {
		t.Error("the document does not name the seller and the quote")
	}

	// The artifact itself.
	w = e.do("GET", "/v1/artifacts/"+sha, "")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), doc) || w.Header().Get("Content-Type") != "application/pdf" {
		t.Fatalf("GET artifact: %d, %d bytes", w.Code, w.Body.Len())
	}

	// Another tenant sees neither the quote's document nor the artifact.
	acme := "Authorization: Bearer " + e.token("acme")
	expectProblem(t, e.do("GET", "/v1/artifacts/"+sha, "", acme), 404, grains.CodeNotFound)
	expectProblem(t, e.do("GET", "/v1/quotes/q-doc/document", "", acme), 404, grains.CodeNotFound)
	expectProblem(t, e.do("POST", "/v1/quotes/q-doc/document", "", acme), 404, grains.CodeNotFound)
	expectProblem(t, e.do("GET", "/v1/artifacts/"+sha[:63], ""), 404, grains.CodeNotFound)
	expectProblem(t, e.do("GET", "/v1/artifacts/"+sha, "", "Authorization: "), 401, grains.CodeUnauthenticated)
}

func TestQuoteDocumentRefusals(t *testing.T) {
	e := newDocEnv(t)
	putQuote(t, e, "demo", "q-priced", approvedCmds[:3]...)
	putQuote(t, e, "demo", "q-ok", approvedCmds...)

	// Not approved: no artifact is stored, nothing is sent.
	expectProblem(t, e.do("POST", "/v1/quotes/q-priced/document", ""), 409, grains.CodeInvalidTransition)
	expectProblem(t, e.do("GET", "/v1/quotes/q-priced/document", ""), 404, grains.CodeNotFound)
	expectProblem(t, e.do("POST", "/v1/quotes/q-none/document", ""), 404, grains.CodeNotFound)
	// A caller without the sales role stores nothing either.
	expectProblem(t, e.do("POST", "/v1/quotes/q-ok/document", "", "Authorization: Bearer "+e.tokenWith("demo", "approver")), 403, grains.CodeForbidden)
	// The caller expected another revision.
	expectProblem(t, e.do("POST", "/v1/quotes/q-ok/document", `{"revision":2}`), 409, grains.CodeStaleRevision)
	expectProblem(t, e.do("POST", "/v1/quotes/q-ok/document", `{"revision":"x"}`), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("POST", "/v1/quotes/q-ok/document", `{"other":1}`), 400, grains.CodeBadRequest)
	if sent := e.g.Sent(); len(sent) != 0 {
		t.Fatalf("refused renders sent %+v", sent)
	}

	// Without an artifact store the endpoints are unavailable.
	bare := newEnv(t)
	putQuote(t, bare, "demo", "q-ok", approvedCmds...)
	expectProblem(t, bare.do("POST", "/v1/quotes/q-ok/document", ""), 503, grains.CodeUnavailable)
	expectProblem(t, bare.do("GET", "/v1/artifacts/"+hex.EncodeToString(make([]byte, 32)), ""), 503, grains.CodeUnavailable)
}

// Concurrent renders of one quote agree on one document and attach it once.
func TestQuoteDocumentConcurrentRenders(t *testing.T) {
	e := newDocEnv(t)
	putQuote(t, e, "demo", "q-race", approvedCmds...)
	const n = 6
	type out struct {
		code int
		sha  string
	}
	res := make(chan out, n)
	for range n {
		go func() {
			w := e.do("POST", "/v1/quotes/q-race/document", "")
			m := decode(t, w)
			s, _ := m["sha256"].(string)
			res <- out{w.Code, s}
		}()
	}
	created, shas := 0, map[string]bool{}
	for range n {
		o := <-res
		switch o.code {
		case 201:
			created++
		case 200:
		default:
			t.Fatalf("render answered %d", o.code)
		}
		shas[o.sha] = true
	}
	if created != 1 || len(shas) != 1 {
		t.Fatalf("%d renders created a document, shas %v; want exactly one of one", created, shas)
	}
}

// attach-document accepts only a document the tenant has stored.
func TestAttachDocumentNeedsAStoredArtifact(t *testing.T) {
	e := newDocEnv(t)
	putQuote(t, e, "demo", "q-att", approvedCmds...)
	unknown := hex.EncodeToString(make([]byte, 32))
	m := expectProblem(t, e.do("POST", "/v1/quotes/q-att/attach-document", `{"revision":1,"sha256":"`+unknown+`","artifactId":"x"}`), 422, grains.CodeValidation)
	if vs, _ := m["violations"].([]any); len(vs) != 1 || vs[0].(map[string]any)["code"] != "artifact_not_found" {
		t.Fatalf("problem %v", m)
	}
	if sent := e.g.Sent(); len(sent) != 0 {
		t.Fatalf("sent %+v", sent)
	}
	// Stored by another tenant is not stored for this one.
	acme := "Authorization: Bearer " + e.token("acme")
	putQuote(t, e, "acme", "q-acme", approvedCmds...)
	sha := expect(t, e.do("POST", "/v1/quotes/q-acme/document", "", acme), 201)["sha256"].(string)
	expectProblem(t, e.do("POST", "/v1/quotes/q-att/attach-document", `{"revision":1,"sha256":"`+sha+`","artifactId":"x"}`), 422, grains.CodeValidation)
	// A stored one goes to the grain.
	own := expect(t, e.do("POST", "/v1/quotes/q-att/document", ""), 201)["sha256"].(string)
	expect(t, e.do("POST", "/v1/quotes/q-att/attach-document", `{"revision":1,"sha256":"`+own+`","artifactId":"`+own+`"}`), 200)
}
