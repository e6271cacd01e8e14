package e2e

import (
	"bytes"
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

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/streams/hub"
)

// webhook is a subscriber endpoint that records every delivery.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	eventID, signature string
	body               []byte
	event              hub.Event
	order              map[string]any
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d := delivery{eventID: r.Header.Get(hub.HeaderEventID), signature: r.Header.Get(hub.HeaderSignature), body: b}
		if json.Unmarshal(b, &d.event) == nil {
			json.Unmarshal(d.event.Event.ProductOrder, &d.order)
		}
		w.mu.Lock()
		w.got = append(w.got, d)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) deliveries() []delivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

type hubSubscription struct {
	hub.View
}

// TestHubWebhookDev runs the hub in `grainline dev`'s set-up (embedded
// store, in-process broker and NATS): a subscription made over HTTP receives
// the signed state changes of an order made through the whole quote
// journey; another tenant's subscriber receives none of them.
func TestHubWebhookDev(t *testing.T) {
	e := startPlatform(t, embedded, platformOpts{})
	addr := e.p.HTTPAddr
	integ := newHTTPDoor(addr, e.token(platform.DemoTenant, "integration"))
	sales := newHTTPDoor(addr, e.salesApprover())
	otherInteg := newHTTPDoor(addr, e.token("other", "integration"))
	wh, other := newWebhook(t), newWebhook(t)

	body := map[string]string{"callback": wh.srv.URL + "/orders",
		"query": "eventType=ProductOrderCreateEvent,ProductOrderStateChangeEvent"}
	sales.request(t, http.MethodPost, "/v1/hub", body, opts{}).expectProblem(t, "subscribe as sales", 403, "forbidden")
	bad := integ.request(t, http.MethodPost, "/v1/hub", map[string]string{"callback": "https://u:p@example.com/x", "query": "eventType=OrderCreated"}, opts{})
	bad.expectProblem(t, "invalid subscription", 422, "validation_failed")
	var vs struct {
		Violations []grains.Violation `json:"violations"`
	}
	bad.decode(t, &vs)
	if len(vs.Violations) != 2 || vs.Violations[0].Pointer != "/callback" || vs.Violations[1].Pointer != "/query" {
		t.Fatalf("violations %+v, want /callback and /query", vs.Violations)
	}

	created := integ.request(t, http.MethodPost, "/v1/hub", body, opts{}).expect(t, "subscribe", 201)
	var sub hubSubscription
	created.decode(t, &sub)
	if sub.ID == "" || sub.Secret == "" || created.Header["Location"] != "/v1/hub/"+sub.ID {
		t.Fatalf("created subscription %s (Location %q)", created.Body, created.Header["Location"])
	}
	otherInteg.request(t, http.MethodPost, "/v1/hub", map[string]string{"callback": other.srv.URL}, opts{}).expect(t, "other tenant subscribes", 201)

	// The list shows it without its secret; the other tenant does not see it.
	list := integ.request(t, http.MethodGet, "/v1/hub", nil, opts{}).expect(t, "list", 200)
	var l struct {
		Items []hubSubscription `json:"items"`
	}
	list.decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != sub.ID || l.Items[0].Secret != "" {
		t.Fatalf("list %s", list.Body)
	}
	otherInteg.request(t, http.MethodGet, "/v1/hub/"+sub.ID, nil, opts{}).expectProblem(t, "other tenant reads it", 404, "not_found")
	// The same over NATS.
	nd := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, integ.token)
	nl := nd.do(t, "hub", "list", "", nil, opts{}).expect(t, "NATS hub.list", 200)
	l.Items = nil
	nl.decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != sub.ID {
		t.Fatalf("NATS list %s", nl.Body)
	}

	// The whole journey: quote to completed order.
	offering := firstOffering(t, sales)
	quoteID := toApproved(t, sales, offering)
	acceptDocument(t, sales, quoteID, renderDocument(t, sales, quoteID))
	orderID := order.IDForQuote(quoteID)
	awaitOrder(t, sales, quoteID, order.StatusCompleted)

	eventually(t, journeyTimeout, func() (bool, string) {
		var types []string
		for _, d := range wh.deliveries() {
			types = append(types, fmt.Sprintf("%s/%v", d.event.EventType, d.order["state"]))
		}
		return slices.Contains(types, hub.EventStateChange+"/completed"), fmt.Sprintf("webhook received %v", types)
	})
	got := wh.deliveries()
	if got[0].event.EventType != hub.EventCreate || got[len(got)-1].order["state"] != "completed" {
		t.Fatalf("first delivery %s, last %s: want the create first and the completion last", got[0].body, got[len(got)-1].body)
	}
	for _, d := range got {
		if err := hub.Verify(sub.Secret, d.signature, d.body, time.Now(), time.Minute); err != nil {
			t.Fatalf("delivery %s: signature %q: %v", d.eventID, d.signature, err)
		}
		if d.eventID == "" || d.eventID != d.event.EventID || d.order["id"] != orderID {
			t.Fatalf("delivery %s: event id header %q, order %v", d.body, d.eventID, d.order["id"])
		}
		if d.event.EventType == hub.EventAttributeChange {
			t.Fatalf("a filtered-out event was delivered: %s", d.body)
		}
	}

	// The delivery state shows what was delivered.
	var state hubSubscription
	eventually(t, 10*time.Second, func() (bool, string) {
		r := integ.request(t, http.MethodGet, "/v1/hub/"+sub.ID, nil, opts{}).expect(t, "get subscription", 200)
		r.decode(t, &state)
		st := state.Delivery
		return st != nil && st.Delivered == int64(len(got)) && st.Status == hub.StatusOK && st.LastEventID == got[len(got)-1].eventID,
			fmt.Sprintf("delivery state %s, want %d delivered", r.Body, len(got))
	})
	if state.Secret != "" {
		t.Fatal("GET shows the secret")
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		m := integ.request(t, http.MethodGet, "/metrics", nil, opts{}).expect(t, "metrics", 200)
		want := fmt.Sprintf(`grainline_hub_deliveries_total{outcome="delivered"} %d`, len(got))
		return strings.Contains(string(m.Body), want), "metrics lack " + want
	})
	if n := len(other.deliveries()); n != 0 {
		t.Fatalf("the other tenant's subscriber received %d of the demo tenant's events", n)
	}

	integ.request(t, http.MethodDelete, "/v1/hub/"+sub.ID, nil, opts{}).expect(t, "delete", 204)
	integ.request(t, http.MethodGet, "/v1/hub/"+sub.ID, nil, opts{}).expectProblem(t, "get deleted", 404, "not_found")
	nd.do(t, "hub", "delete", sub.ID, nil, opts{}).expectProblem(t, "NATS delete deleted", 404, "not_found")
}

// A subscribe with an Idempotency-Key creates one subscription: the same
// key and body again, over HTTP or NATS, answer the first reply (same
// Location, same secret) with Idempotent-Replayed; the key with another
// body, or by another integration user of the tenant, is 422
// idempotency_key_reused; another tenant's key of the same name is its own.
func TestHubSubscribeIdempotencyKey(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		integ := newHTTPDoor(e.p.HTTPAddr, e.token(platform.DemoTenant, "integration"))
		integNATS := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, integ.token)
		otherTok, err := e.p.Token(platform.DemoTenant, "e2e-someone-else", []string{"integration"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		someoneElse := newHTTPDoor(e.p.HTTPAddr, otherTok)
		otherTenant := newHTTPDoor(e.p.HTTPAddr, e.token("other", "integration"))
		body := map[string]string{"callback": "http://127.0.0.1:9/orders", "query": "eventType=ProductOrderCreateEvent"}

		first := integ.request(t, http.MethodPost, "/v1/hub", body, opts{idemKey: "sub-1"}).expect(t, "subscribe", 201)
		var sub hubSubscription
		first.decode(t, &sub)
		if first.Replayed || sub.ID == "" || sub.Secret == "" || first.Header["Location"] != "/v1/hub/"+sub.ID {
			t.Fatalf("first subscribe: replayed %v location %q body %s", first.Replayed, first.Header["Location"], first.Body)
		}
		again := integ.request(t, http.MethodPost, "/v1/hub", body, opts{idemKey: "sub-1"}).expect(t, "repeat over HTTP", 201)
		if !again.Replayed || again.Header["Location"] != first.Header["Location"] || !bytes.Equal(again.Body, first.Body) {
			t.Fatalf("HTTP repeat: replayed %v location %q body %s, want the first reply %s", again.Replayed, again.Header["Location"], again.Body, first.Body)
		}
		nr := integNATS.do(t, "hub", "create", "", body, opts{idemKey: "sub-1"}).expect(t, "repeat over NATS", 201)
		if !nr.Replayed || nr.ID != sub.ID || !bytes.Equal(nr.Body, first.Body) {
			t.Fatalf("NATS repeat: replayed %v id %q body %s", nr.Replayed, nr.ID, nr.Body)
		}
		otherBody := map[string]string{"callback": "http://127.0.0.1:9/other", "query": ""}
		integ.request(t, http.MethodPost, "/v1/hub", otherBody, opts{idemKey: "sub-1"}).expectProblem(t, "same key, other body", 422, "idempotency_key_reused")
		integNATS.do(t, "hub", "create", "", otherBody, opts{idemKey: "sub-1"}).expectProblem(t, "same key, other body over NATS", 422, "idempotency_key_reused")
		someoneElse.request(t, http.MethodPost, "/v1/hub", body, opts{idemKey: "sub-1"}).expectProblem(t, "same key and body, another user", 422, "idempotency_key_reused")
		theirs := otherTenant.request(t, http.MethodPost, "/v1/hub", body, opts{idemKey: "sub-1"}).expect(t, "other tenant, same key", 201)
		if theirs.Replayed || theirs.Header["Location"] == first.Header["Location"] {
			t.Fatalf("other tenant: replayed %v location %q", theirs.Replayed, theirs.Header["Location"])
		}

		var l struct {
			Items []hubSubscription `json:"items"`
		}
		integ.request(t, http.MethodGet, "/v1/hub", nil, opts{}).expect(t, "list", 200).decode(t, &l)
		if len(l.Items) != 1 || l.Items[0].ID != sub.ID {
			t.Fatalf("subscriptions after repeats %+v; want the one", l.Items)
		}
	})
}
