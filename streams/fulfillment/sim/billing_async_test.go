package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
)

func billingReq(key string) fulfillment.Request {
	return fulfillment.Request{Tenant: "acme", OrderID: "o-1", TaskID: "o-1/1/activateBilling", TaskType: fulfillment.TypeActivateBilling, IdempotencyKey: key}
}

// TestAsyncBillingCallback: an activation is accepted with a pending
// receipt, queried as pending while undecided, and decided once: the
// callback reaches the sink with the activation's reference, the query then
// finds it active, and a repeated call activates nothing more.
func TestAsyncBillingCallback(t *testing.T) {
	got := make(chan sim.Callback, 4)
	b, err := sim.NewAsyncBilling(sim.Config{}, sim.AsyncConfig{Sink: func(_ context.Context, cb sim.Callback) error {
		got <- cb
		return nil
	}, Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	r, err := b.Activate(ctx, billingReq("k1"))
	if err != nil || !r.Pending || r.Ref == "" || r.Key != "k1" {
		t.Fatalf("activate: %+v %v, want a pending receipt", r, err)
	}
	q, found, err := b.Query(ctx, "k1")
	if err != nil || !found || !q.Pending || q.Ref != r.Ref {
		t.Fatalf("query while undecided: %+v %v %v", q, found, err)
	}
	if _, found, err := b.Query(ctx, "nope"); found || err != nil {
		t.Fatalf("query of an unknown key: found %v err %v", found, err)
	}
	again, err := b.Activate(ctx, billingReq("k1"))
	if err != nil || !again.Pending || again.Ref != r.Ref {
		t.Fatalf("repeated activate while pending: %+v %v", again, err)
	}
	if st := b.Stats(); st.Accepted != 1 || st.Effects != 0 || st.Calls != 2 {
		t.Fatalf("stats %+v, want one acceptance and no activation yet", st)
	}
	b.Close() // an hour's delay: nothing decided, no callback
	if st := b.Stats(); st.CallbacksSent+st.CallbacksDropped != 0 || len(got) != 0 {
		t.Fatalf("a closed system sent callbacks: %+v", st)
	}
	if _, err := b.Activate(ctx, billingReq("k2")); !errors.Is(err, fulfillment.ErrTechnical) {
		t.Fatalf("activate after close: %v, want a technical failure", err)
	}

	b2, err := sim.NewAsyncBilling(sim.Config{}, sim.AsyncConfig{Sink: func(_ context.Context, cb sim.Callback) error {
		got <- cb
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	r, err = b2.Activate(ctx, billingReq("k1"))
	if err != nil || !r.Pending {
		t.Fatalf("activate: %+v %v", r, err)
	}
	var cb sim.Callback
	select {
	case cb = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	if cb.Status != sim.CallbackActive || cb.Ref != r.Ref || cb.Key != "k1" || cb.Tenant != "acme" || cb.OrderID != "o-1" || cb.TaskID != "o-1/1/activateBilling" {
		t.Fatalf("callback %+v", cb)
	}
	b2.Close() // waits for the delivery's bookkeeping
	q, found, err = b2.Query(ctx, "k1")
	if err != nil || !found || q.Pending || q.Ref != r.Ref {
		t.Fatalf("query once active: %+v %v %v", q, found, err)
	}
	if st := b2.Stats(); st.Effects != 1 || st.CallbacksSent != 1 || st.CallbacksDropped != 0 || len(b2.Effects()) != 1 {
		t.Fatalf("stats %+v, want one activation and one callback", st)
	}
}

// TestAsyncBillingDropsAndRejects: dropped callbacks are counted, not sent;
// a rejected activation is reported as rejected by its callback and by the
// query.
func TestAsyncBillingDropsAndRejects(t *testing.T) {
	ctx := context.Background()
	sent := make(chan sim.Callback, 4)
	sink := func(_ context.Context, cb sim.Callback) error { sent <- cb; return nil }
	drop, err := sim.NewAsyncBilling(sim.Config{}, sim.AsyncConfig{Sink: sink, DropAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drop.Activate(ctx, billingReq("k1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return drop.Stats().CallbacksDropped == 1 })
	drop.Close()
	if st := drop.Stats(); st.Effects != 1 || st.CallbacksSent != 0 || len(sent) != 0 {
		t.Fatalf("drop all: stats %+v, %d sent", st, len(sent))
	}

	rej, err := sim.NewAsyncBilling(sim.Config{RejectRate: 1, Rand: seq(0.5)}, sim.AsyncConfig{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	defer rej.Close()
	if r, err := rej.Activate(ctx, billingReq("k9")); err != nil || !r.Pending {
		t.Fatalf("activate: %+v %v: the rejection comes later", r, err)
	}
	cb := <-sent
	if cb.Status != sim.CallbackRejected || cb.Reason == "" {
		t.Fatalf("callback %+v, want a rejection with its reason", cb)
	}
	if _, _, err := rej.Query(ctx, "k9"); !errors.Is(err, fulfillment.ErrRejected) {
		t.Fatalf("query of a rejected activation: %v", err)
	}
	if _, err := rej.Activate(ctx, billingReq("k9")); !errors.Is(err, fulfillment.ErrRejected) {
		t.Fatalf("repeated activate of a rejected key: %v", err)
	}
	if _, err := sim.NewAsyncBilling(sim.Config{}, sim.AsyncConfig{DropRate: 2}); !errors.Is(err, sim.ErrConfig) {
		t.Fatalf("DropRate 2: %v", err)
	}
}

// TestHTTPSink: the sink posts the callback as JSON with the tenant's
// token; a non-2xx reply is ErrCallbackRefused.
func TestHTTPSink(t *testing.T) {
	var body sim.CallbackBody
	var auth, key string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, key = r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key")
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	sink := sim.HTTPSink(func(tenant string) (string, string, error) {
		return srv.URL + "/v1/callbacks/billing", "tok-" + tenant, nil
	}, srv.Client())
	cb := sim.Callback{Tenant: "acme", OrderID: "o-1", TaskID: "o-1/1/activateBilling", Key: "k", Status: sim.CallbackActive, Ref: "billing-1"}
	if err := sink(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer tok-acme" || key == "" || body.OrderID != "o-1" || body.TaskID != cb.TaskID || body.Status != "active" ||
		body.BillingRef != "billing-1" || body.ExternalKey != "k" {
		t.Fatalf("posted %+v with %q, %q", body, auth, key)
	}
	status = http.StatusNotFound
	if err := sink(context.Background(), cb); !errors.Is(err, sim.ErrCallbackRefused) {
		t.Fatalf("404: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
