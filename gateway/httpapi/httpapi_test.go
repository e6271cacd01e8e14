package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type catalogs map[grains.TenantID]string

func (c catalogs) CatalogJSON(_ context.Context, t grains.TenantID) ([]byte, error) {
	if s, ok := c[t]; ok {
		return []byte(s), nil
	}
	return nil, grains.Errorf(grains.CodeNotFound, "no catalog")
}

type env struct {
	t     *testing.T
	g     *fakegrains.Grains
	h     http.Handler
	priv  ed25519.PrivateKey
	logs  *syncBuffer
	ready []func(context.Context) error
}

func newEnv(t *testing.T, mutate ...func(*Config, *Deps)) *env {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	g := fakegrains.New()
	e := &env{t: t, g: g, priv: priv, logs: &syncBuffer{}}
	cfg := Config{}
	deps := Deps{Sender: g, Reader: g, Verifier: v, Orders: g,
		Catalog: catalogs{"demo": `{"products":["widget"]}`, "acme": `{"products":["anvil"]}`}}
	for _, m := range mutate {
		m(&cfg, &deps)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.h, err = New(cfg, deps, log)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) token(tenant grains.TenantID) string {
	e.t.Helper()
	tok, err := auth.Mint(e.priv, auth.Claims{Subject: "alice", Tenant: tenant, Roles: []string{"sales"}}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request; hdr are "Name: value" pairs. A token for tenant
// "demo" is sent unless hdr sets Authorization (to "" for none).
func (e *env) do(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", "Bearer "+e.token("demo"))
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return m
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	return decode(t, w)
}

// expectProblem checks the problem+json shape and returns the body.
func expectProblem(t *testing.T, w *httptest.ResponseRecorder, status int, code grains.Code) map[string]any {
	t.Helper()
	m := expect(t, w, status)
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if m["code"] != string(code) || m["status"] != float64(status) || m["type"] != "urn:grainline:problem:"+string(code) || m["title"] == "" {
		t.Errorf("problem = %v, want code %s status %d", m, code, status)
	}
	return m
}

func createQuote(e *env, hdr ...string) (string, *httptest.ResponseRecorder) {
	e.t.Helper()
	w := e.do("POST", "/v1/quotes", `{"customerId":"c-1","customerName":"ACME","currency":"EUR"}`, hdr...)
	m := expect(e.t, w, 201)
	return m["id"].(string), w
}

func TestQuoteToOrderLifecycle(t *testing.T) {
	e := newEnv(t)
	id, w := createQuote(e)
	if w.Header().Get("Location") != "/v1/quotes/"+id || w.Header().Get("ETag") != `"1"` {
		t.Fatalf("create headers = %v", w.Header())
	}
	m := expect(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{"productId":"widget","quantity":2}`), 200)
	lineID := m["lines"].([]any)[0].(map[string]any)["lineId"].(string)
	expect(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{"productId":"gadget","quantity":1}`), 200)
	m = expect(t, e.do("DELETE", "/v1/quotes/"+id+"/lines/"+lineID, ""), 200)
	if n := len(m["lines"].([]any)); n != 1 {
		t.Fatalf("lines after remove = %d", n)
	}
	for _, step := range []string{"price", "submit", "approve"} {
		expect(t, e.do("POST", "/v1/quotes/"+id+"/"+step, ""), 200)
	}
	w = e.do("POST", "/v1/quotes/"+id+"/accept", "{}")
	if m := expect(t, w, 200); m["status"] != "accepted" || w.Header().Get("ETag") != `"8"` {
		t.Fatalf("accept = %v etag %s", m, w.Header().Get("ETag"))
	}
	m = expect(t, e.do("GET", "/v1/quotes/"+id, ""), 200)
	order, _ := m["order"].(map[string]any)
	orderID := "o-" + id
	if order["id"] != orderID || order["href"] != "/v1/orders/"+orderID {
		t.Fatalf("quote order link = %v", m["order"])
	}
	if m := expect(t, e.do("GET", "/v1/orders/"+orderID, ""), 200); m["quoteId"] != id {
		t.Fatalf("order = %v", m)
	}
	list := expect(t, e.do("GET", "/v1/orders?quoteId="+id, ""), 200)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != orderID {
		t.Fatalf("orders by quote = %v", list)
	}
	if m := expect(t, e.do("POST", "/v1/orders/"+orderID+"/cancel", `{"reason":"changed mind"}`), 200); m["status"] != "cancelled" || m["reason"] != "changed mind" {
		t.Fatalf("cancel order = %v", m)
	}
	// The same command again is refused by the state machine.
	expectProblem(t, e.do("POST", "/v1/orders/"+orderID+"/cancel", `{}`), 409, grains.CodeInvalidTransition)
}

func TestQuoteWithoutOrderHasNoLink(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	if m := expect(t, e.do("GET", "/v1/quotes/"+id, ""), 200); m["order"] != nil {
		t.Fatalf("draft quote has an order link: %v", m)
	}
	// An accepted quote whose order is not yet known has no link either.
	e.g.Put("demo", grains.KindQuote, "q-accepted", map[string]any{"id": "q-accepted", "status": "accepted"})
	if m := expect(t, e.do("GET", "/v1/quotes/q-accepted", ""), 200); m["order"] != nil {
		t.Fatalf("link before the order exists: %v", m)
	}
	if list := expect(t, e.do("GET", "/v1/orders?quoteId=q-accepted", ""), 200); len(list["items"].([]any)) != 0 {
		t.Fatalf("orders = %v", list)
	}
	expectProblem(t, e.do("GET", "/v1/orders", ""), 400, grains.CodeBadRequest)
}

func TestRemaingQuoteCommands(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	expect(t, e.do("POST", "/v1/quotes/"+id+"/price", ""), 200)
	expect(t, e.do("POST", "/v1/quotes/"+id+"/submit", ""), 200)
	if m := expect(t, e.do("POST", "/v1/quotes/"+id+"/reject", `{"reason":"too cheap"}`), 200); m["status"] != "rejected" || m["reason"] != "too cheap" {
		t.Fatalf("reject = %v", m)
	}
	id2, _ := createQuote(e)
	if m := expect(t, e.do("POST", "/v1/quotes/"+id2+"/cancel", ""), 200); m["status"] != "cancelled" {
		t.Fatalf("cancel = %v", m)
	}
	// Domain errors keep their code, message and violations.
	m := expectProblem(t, e.do("POST", "/v1/quotes", `{"customerId":"c"}`), 422, grains.CodeValidation)
	vs, _ := m["violations"].([]any)
	if len(vs) != 1 || vs[0].(map[string]any)["pointer"] != "/currency" {
		t.Fatalf("violations = %v", m["violations"])
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := auth.Mint(otherKey, auth.Claims{Subject: "mallory", Tenant: "demo"}, time.Hour)
	expired, _ := auth.Mint(e.priv, auth.Claims{Subject: "alice", Tenant: "demo"}, -time.Hour)
	cases := map[string]string{
		"no token":      "Authorization: ",
		"not bearer":    "Authorization: Basic YTpi",
		"bad signature": "Authorization: Bearer " + forged,
		"expired":       "Authorization: Bearer " + expired,
		"garbage":       "Authorization: Bearer abc.def.ghi",
	}
	for name, hdr := range cases {
		t.Run(name, func(t *testing.T) {
			for _, req := range [][2]string{{"GET", "/v1/quotes/" + id}, {"POST", "/v1/quotes"}, {"GET", "/v1/catalog"}, {"GET", "/v1/orders?quoteId=" + id}} {
				w := e.do(req[0], req[1], "", hdr)
				m := expectProblem(t, w, 401, grains.CodeUnauthenticated)
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if m["instance"] != strings.Split(req[1], "?")[0] {
					t.Errorf("instance = %v", m["instance"])
				}
			}
		})
	}
	if n := len(e.g.Sent()); n != 1 {
		t.Fatalf("unauthenticated requests reached grains: %d commands", n)
	}
	// Public endpoints need no token.
	for _, p := range []string{"/livez", "/readyz", "/metrics", "/openapi.yaml"} {
		if w := e.do("GET", p, "", "Authorization: "); w.Code != 200 {
			t.Errorf("%s = %d", p, w.Code)
		}
	}
}

func TestOtherTenantSeesNotFound(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	acme := "Authorization: Bearer " + e.token("acme")
	missing := expectProblem(t, e.do("GET", "/v1/quotes/q-doesnotexist", ""), 404, grains.CodeNotFound)
	foreign := expectProblem(t, e.do("GET", "/v1/quotes/"+id, "", acme), 404, grains.CodeNotFound)
	if missing["title"] != foreign["title"] || missing["status"] != foreign["status"] {
		t.Errorf("foreign %v differs from missing %v", foreign, missing)
	}
	expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/cancel", "", acme), 404, grains.CodeNotFound)
	// The quote is untouched.
	if m := expect(t, e.do("GET", "/v1/quotes/"+id, ""), 200); m["status"] != "draft" {
		t.Fatalf("quote = %v", m)
	}
	// A tenant in the body is ignored: the command carries the token's.
	w := e.do("POST", "/v1/quotes", `{"tenant":"demo","currency":"EUR"}`, acme)
	expect(t, w, 201)
	sent := e.g.Sent()
	if last := sent[len(sent)-1]; last.Tenant != "acme" || last.Actor != "alice" {
		t.Fatalf("command = %+v", last)
	}
	// Catalog is the token tenant's.
	if m := expect(t, e.do("GET", "/v1/catalog", "", acme), 200); m["products"].([]any)[0] != "anvil" {
		t.Fatalf("catalog = %v", m)
	}
	if m := expect(t, e.do("GET", "/v1/catalog", ""), 200); m["products"].([]any)[0] != "widget" {
		t.Fatalf("catalog = %v", m)
	}
}

func TestIdempotentCreateReplays(t *testing.T) {
	e := newEnv(t)
	id1, w1 := createQuote(e, "Idempotency-Key: order-form-17")
	if w1.Header().Get("Idempotent-Replayed") != "" {
		t.Fatal("first response marked as replay")
	}
	id2, w2 := createQuote(e, "Idempotency-Key: order-form-17")
	if id1 != id2 || w2.Header().Get("Idempotent-Replayed") != "true" || w2.Header().Get("Location") != "/v1/quotes/"+id1 {
		t.Fatalf("replay: id %s vs %s, headers %v", id1, id2, w2.Header())
	}
	if w1.Body.String() != w2.Body.String() || w1.Header().Get("ETag") != w2.Header().Get("ETag") {
		t.Fatalf("replay body differs:\n%s\n%s", w1.Body, w2.Body)
	}
	// The same key from another tenant is another quote.
	id3, w3 := createQuote(e, "Idempotency-Key: order-form-17", "Authorization: Bearer "+e.token("acme"))
	if id3 == id1 || w3.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("cross-tenant key collided: %s", id3)
	}
	// The same key for a different request is refused.
	expectProblem(t, e.do("POST", "/v1/quotes", `{"currency":"USD"}`, "Idempotency-Key: order-form-17"), 422, grains.CodeIdempotencyKeyReused)
	// Replays of other commands too.
	expect(t, e.do("POST", "/v1/quotes/"+id1+"/price", "", "Idempotency-Key: p-1"), 200)
	w := e.do("POST", "/v1/quotes/"+id1+"/price", "", "Idempotency-Key: p-1")
	if expect(t, w, 200); w.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatal("price replay not marked")
	}
	// Malformed keys are refused before reaching a grain.
	n := len(e.g.Sent())
	expectProblem(t, e.do("POST", "/v1/quotes", `{"currency":"EUR"}`, "Idempotency-Key: "+strings.Repeat("k", 256)), 400, grains.CodeBadRequest)
	if len(e.g.Sent()) != n {
		t.Fatal("bad key reached a grain")
	}
}

func TestETagAndIfMatch(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	w := e.do("GET", "/v1/quotes/"+id, "")
	if w.Header().Get("ETag") != `"1"` {
		t.Fatalf("ETag = %q", w.Header().Get("ETag"))
	}
	w = e.do("POST", "/v1/quotes/"+id+"/lines", `{"productId":"a"}`, `If-Match: "1"`)
	expect(t, w, 200)
	if w.Header().Get("ETag") != `"2"` {
		t.Fatalf("ETag after change = %q", w.Header().Get("ETag"))
	}
	// A stale revision loses.
	expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{"productId":"b"}`, `If-Match: "1"`), 412, grains.CodeRevisionMismatch)
	for _, bad := range []string{`1`, `"abc"`, `"0"`, `W/"2"`} {
		expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/price", "", "If-Match: "+bad), 400, grains.CodeBadRequest)
	}
	sent := e.g.Sent()
	if c := sent[len(sent)-1]; c.IfMatch != 1 {
		t.Fatalf("IfMatch passed as %d", c.IfMatch)
	}
}

func TestBodyChecks(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.MaxBodyBytes = 64 })
	id, _ := createQuote(e)
	n := len(e.g.Sent())
	for _, body := range []string{`[1,2]`, `"x"`, `{"a":`, `{} {}`, `null`} {
		m := expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/lines", body), 400, grains.CodeBadRequest)
		if m["detail"] == "" {
			t.Errorf("no detail for %q", body)
		}
	}
	expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{"pad":"`+strings.Repeat("x", 100)+`"}`), 413, "payload_too_large")
	expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{}`, "Content-Type: text/plain"), 415, "unsupported_media_type")
	expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{}`, "Content-Type: application/x-www-form-urlencoded"), 415, "unsupported_media_type")
	if len(e.g.Sent()) != n {
		t.Fatal("rejected bodies reached a grain")
	}
	// JSON with parameters or a +json suffix is fine; so is an empty body.
	expect(t, e.do("POST", "/v1/quotes/"+id+"/lines", `{"productId":"a"}`, "Content-Type: application/json; charset=utf-8"), 200)
	expect(t, e.do("POST", "/v1/quotes/"+id+"/price", `{}`, "Content-Type: application/merge-patch+json"), 200)
	expect(t, e.do("POST", "/v1/quotes/"+id+"/submit", ""), 200)
	if p := e.g.Sent(); string(p[len(p)-1].Payload) != "{}" {
		t.Fatalf("empty body sent as %q", p[len(p)-1].Payload)
	}
	// Bad ids in the path.
	expectProblem(t, e.do("GET", "/v1/quotes/"+strings.Repeat("x", 129), ""), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("GET", "/v1/nothing-here", ""), 404, grains.CodeNotFound)
}

func TestCorrelationID(t *testing.T) {
	e := newEnv(t)
	w := e.do("POST", "/v1/quotes", `{"currency":"EUR"}`, "X-Correlation-Id: corr-123")
	if w.Header().Get("X-Correlation-Id") != "corr-123" {
		t.Fatalf("echo = %q", w.Header().Get("X-Correlation-Id"))
	}
	if c := e.g.Sent()[0]; c.CorrelationID != "corr-123" {
		t.Fatalf("command correlation = %q", c.CorrelationID)
	}
	w = e.do("GET", "/v1/quotes/x", "")
	gen := w.Header().Get("X-Correlation-Id")
	if len(gen) != 32 {
		t.Fatalf("generated correlation id = %q", gen)
	}
	// The request log names method, route, status, tenant and correlation.
	found := false
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["correlation_id"] == gen {
			found = true
			if rec["method"] != "GET" || rec["route"] != "/v1/quotes/{id}" || rec["status"] != float64(404) || rec["tenant_id"] != "demo" || rec["duration"] == nil {
				t.Errorf("log record = %v", rec)
			}
		}
	}
	if !found {
		t.Fatalf("no log line for %s in\n%s", gen, e.logs.String())
	}
}

func TestGrainFailures(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	e.g.SetHook(func(context.Context, call.Command) error {
		return fmt.Errorf("cluster request: %w", context.DeadlineExceeded)
	})
	expectProblem(t, e.do("POST", "/v1/quotes/"+id+"/price", ""), 503, grains.CodeUnavailable)
	e.g.SetHook(func(context.Context, call.Command) error { return errors.New("pgx: password=hunter2 refused") })
	w := e.do("POST", "/v1/quotes/"+id+"/price", "")
	expectProblem(t, w, 500, grains.CodeInternal)
	if strings.Contains(w.Body.String(), "hunter2") {
		t.Fatal("internal error leaked to the client")
	}
	if !strings.Contains(e.logs.String(), "hunter2") {
		t.Fatal("internal error not logged")
	}
	// A grain that outlives the request timeout is 503.
	e2 := newEnv(t, func(c *Config, _ *Deps) { c.RequestTimeout = 20 * time.Millisecond })
	id2, _ := createQuote(e2)
	e2.g.SetHook(func(ctx context.Context, _ call.Command) error { <-ctx.Done(); return ctx.Err() })
	expectProblem(t, e2.do("POST", "/v1/quotes/"+id2+"/price", ""), 503, grains.CodeUnavailable)
	// No catalog configured.
	e3 := newEnv(t, func(_ *Config, d *Deps) { d.Catalog = nil })
	expectProblem(t, e3.do("GET", "/v1/catalog", ""), 503, grains.CodeUnavailable)
}

func TestReadyz(t *testing.T) {
	var mu sync.Mutex
	var storeErr error
	e := newEnv(t, func(_ *Config, d *Deps) {
		d.Ready = []func(context.Context) error{
			func(context.Context) error { return nil },
			func(context.Context) error { mu.Lock(); defer mu.Unlock(); return storeErr },
		}
	})
	expect(t, e.do("GET", "/readyz", ""), 200)
	mu.Lock()
	storeErr = errors.New("truth store: connection refused")
	mu.Unlock()
	m := expectProblem(t, e.do("GET", "/readyz", ""), 503, grains.CodeUnavailable)
	vs := m["violations"].([]any)
	if len(vs) != 1 || !strings.Contains(vs[0].(map[string]any)["message"].(string), "connection refused") || vs[0].(map[string]any)["pointer"] != "/checks/1" {
		t.Fatalf("violations = %v", vs)
	}
	expect(t, e.do("GET", "/livez", ""), 200)
	// A hanging check is cut off by ReadyTimeout.
	e2 := newEnv(t, func(c *Config, d *Deps) {
		c.ReadyTimeout = 20 * time.Millisecond
		d.Ready = []func(context.Context) error{func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	})
	expectProblem(t, e2.do("GET", "/readyz", ""), 503, grains.CodeUnavailable)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	createQuote(e)
	e.do("GET", "/v1/quotes/missing", "")
	w := e.do("GET", "/metrics", "")
	body, _ := io.ReadAll(w.Body)
	for _, want := range []string{
		`grainline_http_requests_total{method="POST",route="/v1/quotes",status="201"} 1`,
		`grainline_http_requests_total{method="GET",route="/v1/quotes/{id}",status="404"} 1`,
		`grainline_http_request_duration_seconds_count{route="/v1/quotes"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestConcurrentCreates(t *testing.T) {
	e := newEnv(t)
	const n = 50
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("POST", "/v1/quotes", strings.NewReader(`{"currency":"EUR"}`))
			r.Header.Set("Authorization", "Bearer "+e.token("demo"))
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code == 201 {
				ids[i] = w.Header().Get("Location")
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("request %d: location %q (duplicate or failed)", i, id)
		}
		seen[id] = true
	}
}

func TestNewValidates(t *testing.T) {
	g := fakegrains.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(Config{}, Deps{Sender: g, Reader: g}, log); err == nil {
		t.Error("missing verifier accepted")
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	v, _ := auth.NewVerifier(pub)
	if _, err := New(Config{MaxBodyBytes: -1}, Deps{Sender: g, Reader: g, Verifier: v}, log); err == nil {
		t.Error("negative body limit accepted")
	}
	if _, err := New(Config{}, Deps{Reader: g, Verifier: v}, log); err == nil {
		t.Error("missing sender accepted")
	}
}

// A path with an empty, "." or ".." segment is a problem, never ServeMux's
// redirect to the cleaned path; clean paths and trailing slashes keep their
// answers.
func TestUncleanPathIsNotFound(t *testing.T) {
	e := newEnv(t)
	id, _ := createQuote(e)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/quotes//revisions/1"},
		{"GET", "/v1/quotes/" + id + "//"},
		{"GET", "//v1/quotes/" + id},
		{"POST", "/v1/quotes//submit"},
		{"GET", "/v1/quotes/./" + id},
		{"GET", "/v1/orders/x/../../quotes/" + id},
		{"GET", "/v1/approval-policies/."},
	} {
		w := e.do(c.method, c.path, "")
		m := expectProblem(t, w, 404, grains.CodeNotFound)
		if loc := w.Header().Get("Location"); loc != "" {
			t.Errorf("%s %s: Location %q", c.method, c.path, loc)
		}
		if d, _ := m["detail"].(string); !strings.Contains(d, "segment") {
			t.Errorf("%s %s: detail %q", c.method, c.path, d)
		}
	}
	// The unclean path is answered before authentication, like any path
	// that names no endpoint.
	r := httptest.NewRequest("GET", "/v1/quotes//revisions/1", nil)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	expectProblem(t, w, 404, grains.CodeNotFound)

	expect(t, e.do("GET", "/v1/quotes/"+id, ""), 200)
	expectProblem(t, e.do("GET", "/v1/quotes/"+id+"/", ""), 404, grains.CodeNotFound)
}
