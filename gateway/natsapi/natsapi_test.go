package natsapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/internal/testenv"
)

// embeddedNATS starts an in-process nats-server on a free port.
func embeddedNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

type catalogs map[grains.TenantID]string

func (c catalogs) CatalogJSON(_ context.Context, t grains.TenantID) ([]byte, error) {
	if s, ok := c[t]; ok {
		return []byte(s), nil
	}
	return nil, grains.Errorf(grains.CodeNotFound, "no catalog")
}

type env struct {
	t      *testing.T
	g      *fakegrains.Grains
	nc     *nats.Conn
	priv   ed25519.PrivateKey
	prefix string
	stop   func() error
}

func newEnv(t *testing.T, url string, mutate ...func(*Config)) *env {
	t.Helper()
	return newEnvDeps(t, url, nil, mutate...)
}

// newEnvDeps is newEnv with a change to the server's Deps.
func newEnvDeps(t *testing.T, url string, depsHook func(*Deps), mutate ...func(*Config)) *env {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	g := fakegrains.New()
	cfg := Config{}
	for _, m := range mutate {
		m(&cfg)
	}
	deps := Deps{Sender: g, Reader: g, Verifier: v, Orders: g, Catalog: catalogs{"demo": `{"products":["widget"]}`}}
	if depsHook != nil {
		depsHook(&deps)
	}
	srv, err := New(cfg, nc, deps, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	e := &env{t: t, g: g, nc: nc, priv: priv, prefix: srv.cfg.Prefix}
	var once sync.Once
	var runErr error
	e.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Wait until the subscription is live: an unauthenticated request gets
	// a 401 reply instead of "no responders".
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := nc.Request(e.prefix+".demo.quote.get", nil, time.Second)
		if err == nil && m.Header.Get(HeaderStatus) == "401" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not answering: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

func (e *env) token(tenant grains.TenantID) string {
	tok, err := auth.Mint(e.priv, auth.Claims{Subject: "bob", Tenant: tenant, Roles: []string{"sales"}}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// req sends a request on <prefix>.<rest>; hdr are "Name: value" pairs. A
// token for "demo" is sent unless hdr sets Authorization ("" for none).
func (e *env) req(rest, body string, hdr ...string) *nats.Msg {
	e.t.Helper()
	m := nats.NewMsg(e.prefix + "." + rest)
	m.Data = []byte(body)
	m.Header.Set(HeaderAuthorization, "Bearer "+e.token("demo"))
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		if v == "" {
			m.Header.Del(k)
		} else {
			m.Header.Set(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := e.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		e.t.Fatalf("request %s: %v", m.Subject, err)
	}
	return r
}

func expect(t *testing.T, m *nats.Msg, status int) map[string]any {
	t.Helper()
	if got := m.Header.Get(HeaderStatus); got != fmt.Sprint(status) {
		t.Fatalf("Status = %s, want %d; body %s", got, status, m.Data)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		t.Fatalf("reply body %q: %v", m.Data, err)
	}
	return out
}

func expectProblem(t *testing.T, m *nats.Msg, status int, code grains.Code) map[string]any {
	t.Helper()
	p := expect(t, m, status)
	if m.Header.Get(HeaderErrorCode) != string(code) || p["code"] != string(code) || p["status"] != float64(status) ||
		p["type"] != "urn:grainline:problem:"+string(code) || m.Header.Get(HeaderContentType) != "application/problem+json" {
		t.Fatalf("problem = %v headers %v, want %s/%d", p, m.Header, code, status)
	}
	return p
}

// lifecycle drives a quote to an order over NATS.
func lifecycle(t *testing.T, e *env) {
	r := e.req("demo.quote.create", `{"customerId":"c-1","currency":"EUR"}`, "X-Correlation-Id: corr-9")
	q := expect(t, r, 201)
	id := r.Header.Get(HeaderID)
	if id == "" || q["id"] != id || r.Header.Get(HeaderETag) != `"1"` || r.Header.Get(HeaderCorrelationID) != "corr-9" {
		t.Fatalf("create reply %v headers %v", q, r.Header)
	}
	if c := e.g.Sent()[0]; c.CorrelationID != "corr-9" || c.Tenant != "demo" || c.Actor != "bob" {
		t.Fatalf("command = %+v", c)
	}
	idH := HeaderID + ": " + id
	expect(t, e.req("demo.quote.addLine", `{"productId":"w"}`, idH), 200)
	for _, step := range []string{"price", "submit", "approve", "accept"} {
		expect(t, e.req("demo.quote."+step, "", idH), 200)
	}
	got := expect(t, e.req("demo.quote.get", "", idH), 200)
	if link, _ := got["order"].(map[string]any); link["id"] != "o-"+id {
		t.Fatalf("quote order link = %v", got["order"])
	}
	list := expect(t, e.req("demo.order.list", `{"quoteId":"`+id+`"}`), 200)
	if items := list["items"].([]any); len(items) != 1 {
		t.Fatalf("order list = %v", list)
	}
	o := expect(t, e.req("demo.order.get", "", HeaderID+": o-"+id), 200)
	if o["quoteId"] != id {
		t.Fatalf("order = %v", o)
	}
	oid := HeaderID + ": o-" + id
	if f := expect(t, e.req("demo.order.fallout", "", oid), 200); f["orderId"] != "o-"+id {
		t.Fatalf("fallout = %v", f)
	}
	if m := expect(t, e.req("demo.order.milestones", "", oid), 200); m["orderId"] != "o-"+id || m["items"] == nil || m["jeopardyAlerts"] == nil {
		t.Fatalf("milestones = %v", m)
	}
	n := len(e.g.Sent())
	e.req("demo.order.retryTask", `{"taskId":"o-`+id+`/provision","reason":"fixed"}`, oid)
	if c := e.g.Sent()[n]; c.Name != "retryTask" || c.ID != "o-"+id {
		t.Fatalf("retryTask sent %+v", c)
	}
	cr := expect(t, e.req("demo.cancelProductOrder.create", `{"productOrderId":"o-`+id+`","reason":"no"}`), 201)
	if cr["id"] != "co-o-"+id || cr["state"] != "done" {
		t.Fatalf("cancel request = %v", cr)
	}
	if g := expect(t, e.req("demo.cancelProductOrder.get", "", HeaderID+": co-o-"+id), 200); g["productOrderId"] != "o-"+id {
		t.Fatalf("cancel request read = %v", g)
	}
	if c := expect(t, e.req("demo.catalog.get", ""), 200); c["products"].([]any)[0] != "widget" {
		t.Fatalf("catalog = %v", c)
	}
	expectProblem(t, e.req("acme.catalog.get", "", "Authorization: Bearer "+e.token("acme")), 404, grains.CodeNotFound)
}

func TestLifecycleEmbedded(t *testing.T) {
	lifecycle(t, newEnv(t, embeddedNATS(t)))
}

// The same against the real nats-server that scripts/services.sh starts.
func TestLifecycleRealServer(t *testing.T) {
	url := testenv.NATS(t)
	// A private prefix and queue keep other users of the shared server out.
	suffix := testenv.RandomSuffix()
	e := newEnv(t, url, func(c *Config) { c.Prefix = "grainline-test-" + suffix; c.QueueGroup = "gw-" + suffix })
	lifecycle(t, e)
	expectProblem(t, e.req("acme.quote.get", "", HeaderID+": q-1"), 403, grains.CodeForbidden)
}

func TestErrors(t *testing.T) {
	e := newEnv(t, embeddedNATS(t))
	r := e.req("demo.quote.create", `{"currency":"EUR"}`)
	id := r.Header.Get(HeaderID)
	idH := HeaderID + ": " + id
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := auth.Mint(otherKey, auth.Claims{Subject: "m", Tenant: "demo"}, time.Hour)
	expired, _ := auth.Mint(e.priv, auth.Claims{Subject: "m", Tenant: "demo"}, -time.Hour)

	expectProblem(t, e.req("demo.quote.get", "", idH, "Authorization: "), 401, grains.CodeUnauthenticated)
	expectProblem(t, e.req("demo.quote.get", "", idH, "Authorization: Bearer "+forged), 401, grains.CodeUnauthenticated)
	expectProblem(t, e.req("demo.quote.get", "", idH, "Authorization: Bearer "+expired), 401, grains.CodeUnauthenticated)
	// A demo token on acme's subject is forbidden; an acme token on its own
	// subject cannot see demo's quote.
	p := expectProblem(t, e.req("acme.quote.get", "", idH), 403, grains.CodeForbidden)
	if p["instance"] != e.prefix+".acme.quote.get" {
		t.Errorf("instance = %v", p["instance"])
	}
	acme := "Authorization: Bearer " + e.token("acme")
	expectProblem(t, e.req("acme.quote.get", "", idH, acme), 404, grains.CodeNotFound)
	expectProblem(t, e.req("acme.quote.submit", "", idH, acme), 404, grains.CodeNotFound)
	// Unknown commands and kinds, bad bodies, bad headers.
	expectProblem(t, e.req("demo.quote.explode", "", idH), 404, grains.CodeNotFound)
	expectProblem(t, e.req("demo.invoice.get", "", idH), 404, grains.CodeNotFound)
	expectProblem(t, e.req("demo.quote.addLine", `[1]`, idH), 400, grains.CodeBadRequest)
	expectProblem(t, e.req("demo.quote.addLine", `{}`), 400, grains.CodeBadRequest) // no id
	expectProblem(t, e.req("demo.quote.create", `{"currency":"EUR"}`, idH), 400, grains.CodeBadRequest)
	expectProblem(t, e.req("demo.quote.price", "", idH, "If-Match: 1"), 400, grains.CodeBadRequest)
	expectProblem(t, e.req("demo.order.list", `{}`), 400, grains.CodeBadRequest)
	// Revision precondition and idempotent replay.
	expectProblem(t, e.req("demo.quote.price", "", idH, `If-Match: "7"`), 412, grains.CodeRevisionMismatch)
	r1 := e.req("demo.quote.price", "", idH, `If-Match: "1"`, "Idempotency-Key: k1")
	expect(t, r1, 200)
	r2 := e.req("demo.quote.price", "", idH, `If-Match: "1"`, "Idempotency-Key: k1")
	expect(t, r2, 200)
	if r2.Header.Get(HeaderReplayed) != "true" || r1.Header.Get(HeaderReplayed) != "" || string(r1.Data) != string(r2.Data) {
		t.Fatalf("replay headers %v / %v", r1.Header, r2.Header)
	}
	// Create with a key derives the id, so a retry reaches the same quote.
	c1 := e.req("demo.quote.create", `{"currency":"EUR"}`, "Idempotency-Key: form-1")
	c2 := e.req("demo.quote.create", `{"currency":"EUR"}`, "Idempotency-Key: form-1")
	expect(t, c2, 201)
	if c1.Header.Get(HeaderID) != c2.Header.Get(HeaderID) || c2.Header.Get(HeaderReplayed) != "true" {
		t.Fatalf("create replay: %v / %v", c1.Header, c2.Header)
	}
	// Transient grain failures are 503, others 500.
	e.g.SetHook(func(context.Context, call.Command) error { return context.DeadlineExceeded })
	expectProblem(t, e.req("demo.quote.submit", "", idH), 503, grains.CodeUnavailable)
	e.g.SetHook(func(context.Context, call.Command) error { return errors.New("boom at 0xdeadbeef") })
	if r := e.req("demo.quote.submit", "", idH); strings.Contains(string(r.Data), "deadbeef") {
		t.Fatal("internal error leaked")
	} else {
		expectProblem(t, r, 500, grains.CodeInternal)
	}
}

// 50 requests whose grain calls all wait for each other: they are answered
// only if the server handles them concurrently.
func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t, embeddedNATS(t))
	const n = 50
	var arrived atomic.Int32
	all := make(chan struct{})
	e.g.SetHook(func(ctx context.Context, _ call.Command) error {
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := nats.NewMsg(e.prefix + ".demo.quote.create")
			m.Data = []byte(`{"currency":"EUR"}`)
			m.Header.Set(HeaderAuthorization, "Bearer "+e.token("demo"))
			m.Header.Set(HeaderIdempotencyKey, fmt.Sprintf("k-%d", i))
			r, err := e.nc.RequestMsg(m, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			if r.Header.Get(HeaderStatus) != "201" {
				errs <- fmt.Errorf("status %s: %s", r.Header.Get(HeaderStatus), r.Data)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// MaxInFlight bounds concurrent grain calls; every request is still
// answered.
func TestMaxInFlight(t *testing.T) {
	e := newEnv(t, embeddedNATS(t), func(c *Config) { c.MaxInFlight = 3 })
	var cur, peak atomic.Int32
	e.g.SetHook(func(context.Context, call.Command) error {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // hold the slot long enough for others to pile up
		cur.Add(-1)
		return nil
	})
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := nats.NewMsg(e.prefix + ".demo.quote.create")
			m.Data = []byte(`{"currency":"EUR"}`)
			m.Header.Set(HeaderAuthorization, "Bearer "+e.token("demo"))
			if r, err := e.nc.RequestMsg(m, 10*time.Second); err == nil && r.Header.Get(HeaderStatus) == "201" {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 20 {
		t.Fatalf("%d of 20 answered", ok.Load())
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..3", p)
	}
}

// A request in flight when Run's context ends is still answered, and Run
// returns once it is.
func TestDrainAnswersInFlight(t *testing.T) {
	e := newEnv(t, embeddedNATS(t))
	entered := make(chan struct{})
	release := make(chan struct{})
	e.g.SetHook(func(context.Context, call.Command) error {
		close(entered)
		<-release
		return nil
	})
	reply := make(chan *nats.Msg, 1)
	go func() {
		m := nats.NewMsg(e.prefix + ".demo.quote.create")
		m.Data = []byte(`{"currency":"EUR"}`)
		m.Header.Set(HeaderAuthorization, "Bearer "+e.token("demo"))
		r, err := e.nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Errorf("request: %v", err)
		}
		reply <- r
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned with a request in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := <-reply; r == nil || r.Header.Get(HeaderStatus) != "201" {
		t.Fatalf("in-flight request not answered: %v", r)
	}
	// After the drain nobody answers.
	if _, err := e.nc.Request(e.prefix+".demo.quote.get", nil, time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("after drain: %v, want no responders", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Prefix: "a.b"}, {Prefix: "*"}, {MaxInFlight: -1}, {QueueGroup: "a b"}} {
		c.setDefaults()
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := Config{}
	c.setDefaults()
	if err := c.Validate(); err != nil || c.Prefix != "grainline" || c.QueueGroup != "grainline-gateway" || c.MaxInFlight != 256 {
		t.Fatalf("defaults %+v: %v", c, err)
	}
}
