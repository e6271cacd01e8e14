package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/hub"
	"github.com/grainline/grainline/streams/streamtest"
)

// receiver is a webhook endpoint that records what it receives and answers
// with the statuses of script in turn (then 200).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	script   []int
	requests []received
	hang     chan struct{} // when set, every request blocks until it closes
}

type received struct {
	eventID, eventType, signature string
	body                          []byte
	verified                      error
	attempt                       string
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{t: t, script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	// Runs before Close (cleanups run last first): Close waits for requests.
	t.Cleanup(func() { r.setHang(false) })
	return r
}

// setHang makes every request block (true) until released (false).
func (r *receiver) setHang(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case on && r.hang == nil:
		r.hang = make(chan struct{})
	case !on && r.hang != nil:
		close(r.hang)
		r.hang = nil
	}
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	rec := received{
		eventID: req.Header.Get(hub.HeaderEventID), eventType: req.Header.Get(hub.HeaderEventType),
		signature: req.Header.Get(hub.HeaderSignature), body: body, attempt: req.Header.Get(hub.HeaderAttempt),
	}
	rec.verified = hub.Verify(r.secret, rec.signature, body, time.Now(), time.Minute)
	r.requests = append(r.requests, rec)
	status := http.StatusOK
	if len(r.script) > 0 {
		status, r.script = r.script[0], r.script[1:]
	}
	hang := r.hang
	r.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-req.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// delivered returns the event ids of requests answered 2xx, in order,
// assuming the script: the first len(script) requests failed.
func (r *receiver) eventIDs() []string {
	var ids []string
	for _, q := range r.got() {
		ids = append(ids, q.eventID)
	}
	return ids
}

type fixture struct {
	cfg    hub.Config
	stop   func() error   // stops the processor setup started
	p      *hub.Processor // the processor setup started
	b      *streamtest.Broker
	topic  string
	reg    *hub.Registry
	events *streamtest.Producer
}

// setup builds a fixture and starts one hub processor for it (until t
// ends): its stop function is f.stop. The receivers listen on loopback, so
// the processor may deliver to private addresses (setupGuarded: not).
func setup(t *testing.T, b *streamtest.Broker, cfg hub.Config) *fixture {
	t.Helper()
	cfg.AllowPrivate = true
	return setupGuarded(t, b, cfg)
}

// setupGuarded is setup with cfg.AllowPrivate as given. Its registry
// accepts loopback callbacks either way.
func setupGuarded(t *testing.T, b *streamtest.Broker, cfg hub.Config) *fixture {
	t.Helper()
	st, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, err := hub.NewRegistry(st, hub.RegistryConfig{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{b: b, topic: b.Topic(t, "oms.order.events", 3, false), reg: reg, events: b.Producer(t)}
	dlq := b.Topic(t, "grainline.deadletter", 1, false)
	cfg.Brokers, cfg.Group = b.Brokers, b.Group(t, "hub-"+f.topic)
	cfg.OrderEvents, cfg.DeadLetter = goka.Stream(f.topic), goka.Stream(dlq)
	if cfg.Retry.Initial == 0 {
		cfg.Retry = backoff.Policy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	}
	f.cfg = cfg
	f.p, f.stop = f.start(t)
	return f
}

// start runs one more hub processor of the fixture's group until t ends;
// stop ends it earlier.
func (f *fixture) start(t *testing.T) (*hub.Processor, func() error) {
	t.Helper()
	p, err := hub.New(f.cfg, f.reg, streamtest.Logger(), f.b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return p, streamtest.Start(t, p)
}

// metrics returns the processor's metric values by name and outcome label.
func metrics(t *testing.T, p *hub.Processor) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := p.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			out[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// subscribe creates a subscription of tenant for r and remembers its secret.
func (f *fixture) subscribe(t *testing.T, tenant string, r *receiver, query string) string {
	t.Helper()
	sub, err := f.reg.Create(context.Background(), tenant, "test", hub.Request{Callback: r.srv.URL + "/hook", Query: query})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = sub.Secret
	r.mu.Unlock()
	return sub.ID
}

// publish produces one order event of tenant and returns its event id.
func (f *fixture) publish(t *testing.T, tenant, orderID string, rev int64, typ, status string) string {
	t.Helper()
	id := fmt.Sprintf("%s/order/%s/%d/0", tenant, orderID, rev)
	payload, _ := json.Marshal(map[string]string{"orderId": orderID, "quoteId": "q-" + orderID, "status": status})
	v, _ := json.Marshal(kafka.Envelope{EventID: id, EventType: typ, EventVersion: 1, OccurredAt: time.Now().UTC(),
		TenantID: tenant, Producer: "order", AggregateKind: "order", AggregateID: orderID, Revision: rev, Payload: payload})
	f.events.Send(t, f.topic, orderID, v, map[string]string{kafka.HeaderTenant: tenant, kafka.HeaderEventID: id})
	return id
}

func (f *fixture) state(t *testing.T, tenant, id string) hub.DeliveryState {
	t.Helper()
	st, err := f.reg.Delivery(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestHubDelivers(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("SignedAndFilteredInOrder", func(t *testing.T) {
			f := setup(t, b, hub.Config{})
			all := newReceiver(t)
			changes := newReceiver(t)
			tenant := "t-" + b.Name
			allID := f.subscribe(t, tenant, all, "")
			f.subscribe(t, tenant, changes, "eventType=ProductOrderStateChangeEvent")

			var want []string
			want = append(want, f.publish(t, tenant, "o-1", 1, "OrderCreated", "acknowledged"))
			want = append(want, f.publish(t, tenant, "o-1", 2, "FulfillmentTaskRequested", "inProgress"))
			want = append(want, f.publish(t, tenant, "o-1", 3, "OrderCompleted", "completed"))
			f.publish(t, tenant, "o-1", 4, "NotAnOrderEventTheHubPublishes", "completed")

			streamtest.Eventually(t, 30*time.Second, "three deliveries to the catch-all subscriber", func() bool { return len(all.got()) >= 3 })
			streamtest.Eventually(t, 30*time.Second, "one delivery to the state-change subscriber", func() bool { return len(changes.got()) >= 1 })
			if got := all.eventIDs(); !slices.Equal(got, want) {
				t.Fatalf("catch-all received %v, want %v in order", got, want)
			}
			for _, q := range append(all.got(), changes.got()...) {
				if q.verified != nil {
					t.Fatalf("signature %q of %s does not verify: %v", q.signature, q.eventID, q.verified)
				}
				if q.attempt != "1" {
					t.Fatalf("attempt header %q", q.attempt)
				}
			}
			c := changes.got()
			if len(c) != 1 || c[0].eventID != want[2] || c[0].eventType != hub.EventStateChange {
				t.Fatalf("state-change subscriber received %+v", c)
			}
			var ev hub.Event
			if err := json.Unmarshal(c[0].body, &ev); err != nil {
				t.Fatal(err)
			}
			var po map[string]any
			json.Unmarshal(ev.Event.ProductOrder, &po)
			if ev.EventID != want[2] || ev.EventType != hub.EventStateChange || po["id"] != "o-1" || po["state"] != "completed" {
				t.Fatalf("event %s", c[0].body)
			}
			streamtest.Eventually(t, 10*time.Second, "delivery state of three events", func() bool {
				st := f.state(t, tenant, allID)
				return st.Delivered == 3 && st.LastEventID == want[2] && st.Status == hub.StatusOK
			})
		})

		t.Run("RetriesServerErrorsThenDelivers", func(t *testing.T) {
			f := setup(t, b, hub.Config{})
			flaky := newReceiver(t, 500, 503)
			tenant := "t-" + b.Name
			id := f.subscribe(t, tenant, flaky, "")
			ev := f.publish(t, tenant, "o-2", 1, "OrderCreated", "acknowledged")
			streamtest.Eventually(t, 30*time.Second, "the event delivered after two failures", func() bool {
				st := f.state(t, tenant, id)
				return st.Delivered == 1
			})
			st := f.state(t, tenant, id)
			if st.Status != hub.StatusOK || st.Attempts != 3 || st.Retried != 2 || st.LastEventID != ev || st.LastStatusCode != 503 || st.LastError == "" {
				t.Fatalf("state %+v", st)
			}
			streamtest.Eventually(t, 10*time.Second, "metrics of one delivery after two retries", func() bool {
				m := metrics(t, f.p)
				return m["grainline_hub_deliveries_total/delivered"] == 1 && m["grainline_hub_deliveries_total/retried"] == 2 && m["grainline_hub_queued"] == 0
			})
			got := flaky.got()
			if len(got) != 3 || got[0].eventID != ev || got[2].eventID != ev || got[2].attempt != "3" || got[2].verified != nil {
				t.Fatalf("requests %+v", got)
			}
		})

		t.Run("PrivateAddressIsRefused", func(t *testing.T) {
			f := setupGuarded(t, b, hub.Config{})
			r := newReceiver(t)
			tenant := "t-" + b.Name
			id := f.subscribe(t, tenant, r, "")
			ev := f.publish(t, tenant, "o-9", 1, "OrderCreated", "acknowledged")
			streamtest.Eventually(t, 30*time.Second, "the event given up", func() bool { return f.state(t, tenant, id).Rejected == 1 })
			st := f.state(t, tenant, id)
			if st.Delivered != 0 || st.Retried != 0 || st.LastGivenUpEventID != ev || !strings.Contains(st.LastError, "callback address not allowed") {
				t.Fatalf("state %+v", st)
			}
			if got := r.got(); len(got) != 0 {
				t.Fatalf("the loopback receiver got %d requests", len(got))
			}
		})

		t.Run("RejectionIsNotRetried", func(t *testing.T) {
			f := setup(t, b, hub.Config{})
			r := newReceiver(t, 410)
			tenant := "t-" + b.Name
			id := f.subscribe(t, tenant, r, "")
			ev := f.publish(t, tenant, "o-3", 1, "OrderCreated", "acknowledged")
			ev2 := f.publish(t, tenant, "o-3", 2, "OrderCancelled", "cancelled")
			streamtest.Eventually(t, 30*time.Second, "the second event delivered", func() bool { return f.state(t, tenant, id).Delivered == 1 })
			st := f.state(t, tenant, id)
			if st.Rejected != 1 || st.Retried != 0 || st.LastGivenUpEventID != ev || st.LastEventID != ev2 || st.Status != hub.StatusOK {
				t.Fatalf("state %+v", st)
			}
			if ids := r.eventIDs(); !slices.Equal(ids, []string{ev, ev2}) {
				t.Fatalf("requests for %v", ids)
			}
		})

		t.Run("ExhaustedAttemptsGiveUp", func(t *testing.T) {
			f := setup(t, b, hub.Config{Attempts: 3})
			r := newReceiver(t, 500, 500, 500)
			tenant := "t-" + b.Name
			id := f.subscribe(t, tenant, r, "")
			ev := f.publish(t, tenant, "o-4", 1, "OrderCreated", "acknowledged")
			streamtest.Eventually(t, 30*time.Second, "the event given up", func() bool { return f.state(t, tenant, id).Exhausted == 1 })
			st := f.state(t, tenant, id)
			if st.Status != hub.StatusFailing || st.Attempts != 3 || st.LastGivenUpEventID != ev || st.Delivered != 0 {
				t.Fatalf("state %+v", st)
			}
		})

		t.Run("StuckSubscriberDoesNotDelayOthers", func(t *testing.T) {
			f := setup(t, b, hub.Config{Timeout: time.Minute})
			stuck := newReceiver(t)
			stuck.setHang(true)
			down := newReceiver(t)
			down.srv.Close() // connection refused, retried with backoff
			healthy := newReceiver(t)
			tenant := "t-" + b.Name
			downID := f.subscribe(t, tenant, down, "")
			f.subscribe(t, tenant, stuck, "")
			f.subscribe(t, tenant, healthy, "")
			other := newReceiver(t)
			f.subscribe(t, "other-"+b.Name, other, "")

			var want []string
			for i := range 5 {
				want = append(want, f.publish(t, tenant, fmt.Sprintf("o-%d", i), 1, "OrderCreated", "acknowledged"))
			}
			otherEv := f.publish(t, "other-"+b.Name, "o-x", 1, "OrderCreated", "acknowledged")
			streamtest.Eventually(t, 30*time.Second, "all five events at the healthy subscriber", func() bool { return len(healthy.got()) == 5 })
			streamtest.Eventually(t, 30*time.Second, "the other tenant's event", func() bool { return len(other.got()) == 1 })
			if got := healthy.eventIDs(); !sameSet(got, want) {
				t.Fatalf("healthy received %v, want %v", got, want)
			}
			if n := len(stuck.got()); n != 1 {
				t.Fatalf("the stuck subscriber got %d requests, want 1 (the one it holds)", n)
			}
			if ids := other.eventIDs(); !slices.Equal(ids, []string{otherEv}) {
				t.Fatalf("the other tenant received %v", ids)
			}
			streamtest.Eventually(t, 30*time.Second, "the down subscriber retrying", func() bool {
				st := f.state(t, tenant, downID)
				return st.Retried >= 2 && st.Status == hub.StatusRetrying && st.Delivered == 0
			})
		})

		t.Run("TenantIsolation", func(t *testing.T) {
			f := setup(t, b, hub.Config{})
			ra, rb := newReceiver(t), newReceiver(t)
			ta, tb := "a-"+b.Name, "b-"+b.Name
			f.subscribe(t, ta, ra, "")
			idB := f.subscribe(t, tb, rb, "")
			var wantA, wantB []string
			for i := range 3 {
				wantA = append(wantA, f.publish(t, ta, fmt.Sprintf("oa-%d", i), 1, "OrderCreated", "acknowledged"))
			}
			wantB = append(wantB, f.publish(t, tb, "ob-0", 1, "OrderCreated", "acknowledged"))
			// The same order id under both tenants: each tenant gets only its own.
			wantA = append(wantA, f.publish(t, ta, "same", 1, "OrderCreated", "acknowledged"))
			wantB = append(wantB, f.publish(t, tb, "same", 1, "OrderCreated", "acknowledged"))
			streamtest.Eventually(t, 30*time.Second, "both tenants' deliveries", func() bool {
				return len(ra.got()) >= len(wantA) && len(rb.got()) >= len(wantB)
			})
			// B's last event was produced after all of A's on the same
			// partition as "same": once it arrived, A's would have too.
			streamtest.Eventually(t, 10*time.Second, "B's delivery state", func() bool { return f.state(t, tb, idB).Delivered == 2 })
			if got := ra.eventIDs(); !sameSet(got, wantA) {
				t.Fatalf("tenant A received %v, want %v", got, wantA)
			}
			if got := rb.eventIDs(); !sameSet(got, wantB) {
				t.Fatalf("tenant B received %v, want %v", got, wantB)
			}
		})
	})
}

// TestHubRedeliversAfterRestart: an event still in delivery when the
// processor stops is not committed: the next processor of the group delivers
// it again, and the events after it, in order, to every matching subscriber
// (the healthy one gets duplicates with the same event ids).
func TestHubRedeliversAfterRestart(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		f := setup(t, b, hub.Config{Timeout: time.Minute})
		stuck, healthy := newReceiver(t), newReceiver(t)
		stuck.setHang(true)
		tenant := "t-" + b.Name
		stuckID := f.subscribe(t, tenant, stuck, "")
		f.subscribe(t, tenant, healthy, "")
		want := []string{
			f.publish(t, tenant, "o-r", 1, "OrderCreated", "acknowledged"),
			f.publish(t, tenant, "o-r", 2, "FulfillmentTaskRequested", "inProgress"),
			f.publish(t, tenant, "o-r", 3, "OrderCompleted", "completed"),
		}
		streamtest.Eventually(t, 30*time.Second, "the healthy subscriber has every event", func() bool { return len(healthy.got()) == 3 })
		streamtest.Eventually(t, 30*time.Second, "the stuck subscriber holds the first", func() bool { return len(stuck.got()) == 1 })
		// The stuck request (timeout: a minute) does not hold the stop up.
		began := time.Now()
		if err := f.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if d := time.Since(began); d > 20*time.Second {
			t.Fatalf("stop took %v with a subscriber hanging", d)
		}
		if got := stuck.eventIDs(); !slices.Equal(got, want[:1]) {
			t.Fatalf("stuck subscriber received %v before the restart", got)
		}
		stuck.setHang(false) // it recovers

		f.start(t)
		streamtest.Eventually(t, 60*time.Second, "every event at the recovered subscriber", func() bool { return len(stuck.got()) == 4 })
		if got := stuck.eventIDs(); !slices.Equal(got, append(want[:1:1], want...)) {
			t.Fatalf("recovered subscriber received %v, want %v then %v in order", got, want[:1], want)
		}
		streamtest.Eventually(t, 30*time.Second, "duplicates at the healthy subscriber", func() bool { return len(healthy.got()) == 6 })
		if got := healthy.eventIDs(); !slices.Equal(got, append(slices.Clone(want), want...)) {
			t.Fatalf("healthy subscriber received %v, want %v twice", got, want)
		}
		for _, q := range append(stuck.got(), healthy.got()...) {
			if q.verified != nil {
				t.Fatalf("signature of %s: %v", q.eventID, q.verified)
			}
		}
		streamtest.Eventually(t, 10*time.Second, "the recovered subscriber's state", func() bool {
			st := f.state(t, tenant, stuckID)
			return st.Delivered == 3 && st.LastEventID == want[2] && st.Status == hub.StatusOK
		})
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
