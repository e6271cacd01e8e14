package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
)

func TestSignKnownVector(t *testing.T) {
	// Computed independently: HMAC-SHA256 over "1700000000." + body.
	const want = "t=1700000000,v1=ae7871c795a1bfa8439eb97fc3cd0c3256dd514d3cbc9d7d8a7e4c24574d5426"
	body := []byte(`{"eventId":"e1"}`)
	got := Sign("whsec_test_secret_0123", time.Unix(1700000000, 0), body)
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	now := time.Unix(1700000100, 0)
	if err := Verify("whsec_test_secret_0123", got, body, now, 5*time.Minute); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for _, tc := range []struct {
		name, secret, header string
		body                 string
		now                  time.Time
		want                 error
	}{
		{"other secret", "whsec_other_secret_00", got, string(body), now, ErrSignatureMismatch},
		{"other body", "whsec_test_secret_0123", got, `{"eventId":"e2"}`, now, ErrSignatureMismatch},
		{"too old", "whsec_test_secret_0123", got, string(body), time.Unix(1700000000+301, 0), ErrSignatureExpired},
		{"no v1", "whsec_test_secret_0123", "t=1700000000", string(body), now, ErrSignatureMalformed},
		{"no t", "whsec_test_secret_0123", "v1=00", string(body), now, ErrSignatureMalformed},
		{"not hex", "whsec_test_secret_0123", "t=1700000000,v1=zz", string(body), now, ErrSignatureMalformed},
		{"second v1 matches", "whsec_test_secret_0123", "t=1700000000,v1=00," + strings.Split(got, ",")[1], string(body), now, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, []byte(tc.body), tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseQueryAndMatch(t *testing.T) {
	for _, tc := range []struct {
		query   string
		wantErr string
		match   map[[2]string]bool // {eventType, state} -> matches
	}{
		{query: "", match: map[[2]string]bool{{EventCreate, "acknowledged"}: true, {EventStateChange, "completed"}: true}},
		{query: "eventType=ProductOrderStateChangeEvent", match: map[[2]string]bool{
			{EventStateChange, "completed"}: true, {EventCreate, "acknowledged"}: false, {EventAttributeChange, "inProgress"}: false}},
		{query: "eventType=ProductOrderStateChangeEvent,ProductOrderCreateEvent", match: map[[2]string]bool{
			{EventStateChange, "failed"}: true, {EventCreate, "acknowledged"}: true, {EventAttributeChange, "inProgress"}: false}},
		{query: "eventType=ProductOrderCreateEvent&eventType=ProductOrderStateChangeEvent", match: map[[2]string]bool{
			{EventStateChange, "failed"}: true, {EventCreate, "acknowledged"}: true}},
		{query: "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed", match: map[[2]string]bool{
			{EventStateChange, "completed"}: true, {EventStateChange, "failed"}: false, {EventCreate, "completed"}: false}},
		{query: " event.productOrder.state = completed , failed ", match: map[[2]string]bool{
			{EventStateChange, "completed"}: true, {EventAttributeChange, "failed"}: true, {EventCreate, "acknowledged"}: false}},
		{query: "eventType=OrderCreated", wantErr: "unknown eventType"},
		{query: "type=ProductOrderCreateEvent", wantErr: "unknown query key"},
		{query: "eventType", wantErr: "not key=value"},
		{query: "eventType=", wantErr: "not key=value"},
		{query: "eventType=ProductOrderCreateEvent,,", wantErr: "empty value"},
		{query: strings.Repeat("x", 2000), wantErr: "longer than"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			f, err := ParseQuery(tc.query)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseQuery error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			for in, want := range tc.match {
				if got := f.Match(in[0], in[1]); got != want {
					t.Errorf("Match(%s, %s) = %v, want %v", in[0], in[1], got, want)
				}
			}
		})
	}
}

func TestValidateCallback(t *testing.T) {
	for _, tc := range []struct {
		url     string
		wantErr string
	}{
		{url: "https://example.com/hooks/orders"},
		{url: "http://127.0.0.1:8081/cb?x=1"},
		{url: "https://[::1]:8443/cb"},
		{url: "", wantErr: "required"},
		{url: "ftp://example.com/x", wantErr: "http or https"},
		{url: "example.com/x", wantErr: "http or https"},
		{url: "https:///path", wantErr: "host"},
		{url: "https://user:pass@example.com/x", wantErr: "credentials"},
		{url: "https://token@example.com/x", wantErr: "credentials"},
		{url: "https://example.com/x#frag", wantErr: "fragment"},
		{url: "https://example.com:0/x", wantErr: "port"},
		{url: "https://example.com:99999/x", wantErr: "port"},
		{url: "mailto:ops@example.com", wantErr: "http or https"},
		{url: "https://example.com/" + strings.Repeat("a", MaxCallbackLen), wantErr: "longer than"},
		{url: "http://exa mple.com/", wantErr: "not a URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := ValidateCallback(tc.url)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateCallback: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateCallback = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestRequestValidateListsEveryViolation(t *testing.T) {
	err := Request{Callback: "ftp://x", Query: "eventType=Nope", Secret: "short"}.Validate()
	var ge *grains.Error
	if !errors.As(err, &ge) || ge.Code != grains.CodeValidation {
		t.Fatalf("Validate = %v, want validation_failed", err)
	}
	var pointers []string
	for _, v := range ge.Violations {
		pointers = append(pointers, v.Pointer)
	}
	if strings.Join(pointers, ",") != "/callback,/query,/secret" {
		t.Fatalf("violations at %v, want /callback, /query, /secret", pointers)
	}
}

func TestNotifyMapsOrderEvents(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	env := kafka.Envelope{EventID: "t/order/o-1/3/0", EventType: "OrderCompleted", TenantID: "t", AggregateKind: "order",
		AggregateID: "o-1", OccurredAt: at, CorrelationID: "c-1",
		Payload: json.RawMessage(`{"orderId":"o-1","quoteId":"q-1","status":"completed","completedAt":"2026-01-02T03:04:05Z"}`)}
	n, err := notify(env)
	if err != nil {
		t.Fatal(err)
	}
	if n.eventType != EventStateChange || n.state != "completed" || n.orderID != "o-1" {
		t.Fatalf("notification %+v", n)
	}
	var ev struct {
		EventID, EventType, CorrelationID, SourceEventType string
		EventTime                                          time.Time
		Event                                              struct {
			ProductOrder map[string]any `json:"productOrder"`
		}
	}
	if err := json.Unmarshal(n.body, &ev); err != nil {
		t.Fatal(err)
	}
	po := ev.Event.ProductOrder
	if ev.EventID != env.EventID || ev.EventType != EventStateChange || !ev.EventTime.Equal(at) || ev.SourceEventType != "OrderCompleted" ||
		po["id"] != "o-1" || po["state"] != "completed" || po["href"] != "/v1/orders/o-1" || po["quoteId"] != "q-1" || po["@type"] != "ProductOrder" {
		t.Fatalf("event body %s", n.body)
	}
	// A jeopardy alert is a ProductOrderJeopardyEvent carrying the alert.
	jeop := env
	jeop.EventType = "OrderJeopardyRaised"
	jeop.Payload = json.RawMessage(`{"orderId":"o-1","quoteId":"q-1","status":"held","jeopardyAlert":{"id":"ja-1","jeopardyType":"hazard"}}`)
	jn, err := notify(jeop)
	if err != nil || jn.eventType != EventJeopardy || jn.state != "held" || !strings.Contains(string(jn.body), `"jeopardyAlert":{"id":"ja-1"`) {
		t.Fatalf("jeopardy notification %+v (%v): %s", jn, err, jn.body)
	}
	if f, err := ParseQuery("eventType=ProductOrderJeopardyEvent"); err != nil || !f.Match(EventJeopardy, "held") || f.Match(EventStateChange, "held") {
		t.Fatalf("jeopardy query: %+v %v", f, err)
	}
	env.EventType = "SomethingElse"
	if _, err := notify(env); !errors.Is(err, errNotPublished) {
		t.Fatalf("unknown event type: %v", err)
	}
	env.EventType, env.Payload = "OrderCreated", json.RawMessage(`[1]`)
	if _, err := notify(env); err == nil {
		t.Fatal("a non-object payload was accepted")
	}
}

func TestTrackerCommitsInOrder(t *testing.T) {
	var mu sync.Mutex
	var log []string
	commit := func(name string) func(error) {
		return func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				log = append(log, name+":abandoned")
			} else {
				log = append(log, name)
			}
		}
	}
	tr := &tracker{ctx: context.Background()}
	a := tr.add(commit("a"))
	tr.expect(a, 1) // one delivery
	tr.finish(a, true)
	b := tr.add(commit("b"))
	tr.finish(b, true) // no delivery: finished at once, but after a
	c := tr.add(commit("c"))
	tr.expect(c, 2)
	tr.finish(c, true)
	tr.finish(c, true) // one of c's deliveries
	if len(log) != 0 {
		t.Fatalf("committed %v before a finished", log)
	}
	tr.finish(a, true) // a's delivery
	if strings.Join(log, ",") != "a,b" {
		t.Fatalf("committed %v, want a,b", log)
	}
	d := tr.add(commit("d"))
	tr.finish(d, true)
	tr.finish(c, false) // c's other delivery abandoned: c and d are not committed
	tr.finish(c, true)  // late: no effect
	e := tr.add(commit("e"))
	tr.finish(e, true)
	if strings.Join(log, ",") != "a,b,c:abandoned,d:abandoned,e:abandoned" {
		t.Fatalf("committed %v", log)
	}
}

// stores opens each truth store adapter: embedded, and PostgreSQL with the
// migrations applied to a fresh database.
func stores(t *testing.T, f func(t *testing.T, st truth.Store)) {
	t.Run("embedded", func(t *testing.T) {
		st, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		pg, err := postgres.Open(ctx, postgres.Config{DSN: testenv.PostgresDB(t)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		if _, err := migrations.Up(ctx, pg.Pool()); err != nil {
			t.Fatal(err)
		}
		f(t, pg)
	})
}

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"93.184.215.14", true}, {"2606:4700::1111", true}, {"100.63.255.255", true}, {"100.128.0.1", true},
		{"127.0.0.1", false}, {"::1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"100.64.0.1", false}, {"0.0.0.0", false}, {"0.1.2.3", false}, {"224.0.0.1", false},
		{"fd00::1", false}, {"fe80::1", false}, {"::", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false},
	} {
		if got := PublicAddr(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("PublicAddr(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}

func TestRegistryRefusesPrivateCallbacks(t *testing.T) {
	st, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	guarded, err := NewRegistry(st, RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cb := range []string{"http://localhost:8080/h", "http://api.LOCALHOST./h", "http://127.0.0.1/h", "http://[::1]:9/h",
		"http://169.254.169.254/latest/meta-data", "https://10.0.0.7/h", "http://[::ffff:192.168.0.1]/h"} {
		_, err := guarded.Create(ctx, "a", "alice", Request{Callback: cb})
		var ge *grains.Error
		if !errors.As(err, &ge) || ge.Code != grains.CodeValidation || len(ge.Violations) != 1 ||
			ge.Violations[0].Pointer != "/callback" || ge.Violations[0].Code != "invalid_callback" {
			t.Errorf("create %s: %v, want invalid_callback at /callback", cb, err)
		}
	}
	if _, err := guarded.Create(ctx, "a", "alice", Request{Callback: "https://hooks.example.com/h"}); err != nil {
		t.Fatalf("a public name: %v", err)
	}
	open, err := NewRegistry(st, RegistryConfig{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Create(ctx, "b", "bob", Request{Callback: "http://127.0.0.1:9/h"}); err != nil {
		t.Fatalf("loopback with AllowPrivate: %v", err)
	}
}

func TestRegistry(t *testing.T) { stores(t, testRegistry) }

func testRegistry(t *testing.T, st truth.Store) {
	reg, err := NewRegistry(st, RegistryConfig{MaxPerTenant: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	body, id, _, err := reg.Subscribe(ctx, "a", "alice", "", []byte(`{"callback":"https://example.com/a","query":"eventType=ProductOrderCreateEvent"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created View
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if created.ID != id || !strings.HasPrefix(created.Secret, "whsec_") || created.Callback != "https://example.com/a" || created.CreatedBy != "alice" {
		t.Fatalf("created %s", body)
	}
	if _, _, _, err := reg.Subscribe(ctx, "a", "alice", "", []byte(`{"callback":"https://example.com/b","query":"","secret":"my-own-secret-0123"}`)); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = reg.Subscribe(ctx, "a", "alice", "", []byte(`{"callback":"https://example.com/c","query":""}`))
	if grains.CodeOf(err) != grains.CodeValidation {
		t.Fatalf("third subscription over the limit: %v", err)
	}
	_, _, _, err = reg.Subscribe(ctx, "a", "alice", "", []byte(`{"callback":"https://example.com/c","url":"x"}`))
	if grains.CodeOf(err) != grains.CodeBadRequest {
		t.Fatalf("unknown field: %v", err)
	}

	list, err := reg.SubscriptionsJSON(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(list), "secret") || strings.Count(string(list), `"id"`) != 2 {
		t.Fatalf("list %s", list)
	}
	one, err := reg.SubscriptionJSON(ctx, "a", id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(one), "secret") || !strings.Contains(string(one), `"delivery":{"status":"ok"`) {
		t.Fatalf("get %s", one)
	}

	// Tenant b sees none of a's subscriptions.
	if list, _ := reg.SubscriptionsJSON(ctx, "b"); string(list) != `{"items":[]}` {
		t.Fatalf("tenant b lists %s", list)
	}
	if _, err := reg.SubscriptionJSON(ctx, "b", id); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("tenant b reads a's subscription: %v", err)
	}
	if err := reg.Unsubscribe(ctx, "b", "bob", id); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("tenant b deletes a's subscription: %v", err)
	}

	// Concurrent delivery-state changes all count.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := reg.record(ctx, "a", id, func(s *DeliveryState) { s.Delivered++ }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st, _ := reg.Delivery(ctx, "a", id); st.Delivered != 8 {
		t.Fatalf("delivered %d, want 8", st.Delivered)
	}

	if err := reg.Unsubscribe(ctx, "a", "alice", id); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := reg.Lookup(ctx, "a", id); ok {
		t.Fatal("deleted subscription still looked up")
	}
	if err := reg.Unsubscribe(ctx, "a", "alice", id); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("second delete: %v", err)
	}

	// Creates and deletes are audited.
	tr, ok := st.(interface {
		AuditTrail(ctx context.Context, key truth.Key) ([]truth.Audit, error)
	})
	if !ok {
		t.Fatalf("%T has no AuditTrail", st)
	}
	recs, err := tr.AuditTrail(ctx, subsKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Actor+":"+r.Action)
	}
	if strings.Join(actions, ",") != "alice:subscribeHub,alice:subscribeHub,alice:unsubscribeHub" {
		t.Fatalf("audit trail %v", actions)
	}
}

func TestSubscribeIdempotencyKey(t *testing.T) { stores(t, testSubscribeIdempotencyKey) }

// A subscribe with an idempotency key records it with the subscription: the
// same key and body again answer the first reply (same id, same generated
// secret), replayed, and create nothing; the key with another body, by
// another actor, or recorded by another command is idempotency_key_reused.
// Keys are per tenant, and concurrent first attempts create one
// subscription.
func testSubscribeIdempotencyKey(t *testing.T, st truth.Store) {
	ctx := context.Background()
	reg, err := NewRegistry(st, RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"callback":"https://example.com/a","query":""}`)
	first, id, replayed, err := reg.Subscribe(ctx, "a", "alice", "api:k1", body)
	if err != nil || replayed {
		t.Fatalf("first subscribe: replayed %v, %v", replayed, err)
	}
	var v View
	if err := json.Unmarshal(first, &v); err != nil || v.ID != id || !strings.HasPrefix(v.Secret, "whsec_") {
		t.Fatalf("first reply %s (%v)", first, err)
	}
	// Another process (its own cache) answers the repeat from the store.
	other, err := NewRegistry(st, RegistryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Registry{reg, other} {
		again, againID, replayed, err := r.Subscribe(ctx, "a", "alice", "api:k1", body)
		if err != nil || !replayed || againID != id || string(again) != string(first) {
			t.Fatalf("repeat: %s id %q replayed %v, %v; want the first reply %s", again, againID, replayed, err, first)
		}
	}
	for name, tc := range map[string]struct {
		actor string
		body  string
	}{
		"other body":  {"alice", `{"callback":"https://example.com/b","query":""}`},
		"other actor": {"mallory", string(body)},
	} {
		if _, _, _, err := reg.Subscribe(ctx, "a", tc.actor, "api:k1", []byte(tc.body)); grains.CodeOf(err) != grains.CodeIdempotencyKeyReused {
			t.Fatalf("%s: %v; want idempotency_key_reused", name, err)
		}
	}
	if subs, _ := reg.List(ctx, "a"); len(subs) != 1 {
		t.Fatalf("tenant a has %d subscriptions after repeats; want 1", len(subs))
	}
	// Another tenant's key of the same name is its own.
	if _, otherID, replayed, err := reg.Subscribe(ctx, "b", "alice", "api:k1", body); err != nil || replayed || otherID == id {
		t.Fatalf("tenant b: id %q replayed %v, %v", otherID, replayed, err)
	}
	// A key recorded by another command (a grain's) is not a subscribe's.
	qk := truth.Key{Tenant: "a", Kind: "quote", ID: "q-1"}
	res, err := st.Commit(ctx, []truth.Commit{{
		Snapshot:    truth.Snapshot{Key: qk, Revision: 1, State: []byte(`{}`)},
		Idempotency: &truth.Idempotency{Tenant: "a", Key: "api:q", Aggregate: qk, Command: "create", Revision: 1, Response: []byte(`{"id":"q-1"}`)},
	}})
	if err != nil || res[0] != nil {
		t.Fatalf("quote commit: %v %v", err, res)
	}
	if _, _, _, err := reg.Subscribe(ctx, "a", "alice", "api:q", body); grains.CodeOf(err) != grains.CodeIdempotencyKeyReused {
		t.Fatalf("a quote's key: %v; want idempotency_key_reused", err)
	}
	// A subscribe's key is not a grain's either: the record names the
	// tenant's subscriptions and the create command.
	rec, err := st.Idempotency(ctx, "a", "api:k1")
	if err != nil || rec.Aggregate != subsKey("a") || rec.Command != "create" || string(rec.Response) != string(first) {
		t.Fatalf("record %+v, %v", rec, err)
	}

	// Concurrent first attempts with one key, through separate registries,
	// create one subscription and all answer it.
	var wg sync.WaitGroup
	ids := make([]string, 6)
	secrets := make([]string, len(ids))
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := NewRegistry(st, RegistryConfig{})
			if err != nil {
				t.Error(err)
				return
			}
			doc, id, _, err := r.Subscribe(ctx, "c", "carol", "api:k2", body)
			if err != nil {
				t.Error(err)
				return
			}
			var v View
			if err := json.Unmarshal(doc, &v); err != nil {
				t.Error(err)
			}
			ids[i], secrets[i] = id, v.Secret
		}()
	}
	wg.Wait()
	for i := range ids {
		if ids[i] == "" || ids[i] != ids[0] || secrets[i] != secrets[0] {
			t.Fatalf("concurrent keyed subscribes answered ids %v secrets %v; want one", ids, secrets)
		}
	}
	if subs, _ := reg.List(ctx, "c"); len(subs) != 1 || subs[0].ID != ids[0] {
		t.Fatalf("tenant c has %+v; want the one subscription %s", subs, ids[0])
	}
}

// TestEveryOrderEventIsMapped fails when the order grain gains an event the
// hub does not know: decide how it is published.
func TestEveryOrderEventIsMapped(t *testing.T) {
	for _, ev := range []string{order.EvCreated, order.EvTaskRequested, order.EvTaskCompleted, order.EvTaskFailed,
		order.EvCompleted, order.EvFailed, order.EvCancelled, order.EvTaskSkipped, order.EvTaskReconciled,
		order.EvTaskAwaiting, order.EvFalloutOpened, order.EvFalloutAssigned, order.EvFalloutResolved,
		order.EvCancellationRequested, order.EvAmended, order.EvJeopardyRaised} {
		if TMFEventType(ev) == "" {
			t.Errorf("order event %s is not published", ev)
		}
	}
}
