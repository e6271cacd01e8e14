package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/streams/fulfillment"
)

// Asynchronous billing (ADR 0022): the simulated billing system accepts an
// activation and reports its result later, by an HTTP POST to the gateway's
// /v1/callbacks/billing.

// createBillingOrder creates a plan v2 order of two lines (dia-1g, and
// sdwan-license) at the order grain, as the intake would, with a callback
// timeout in seconds (0: the default), and returns its id.
func createBillingOrder(t *testing.T, e *env, callbackSeconds int) string {
	t.Helper()
	suffix := testenv.RandomSuffix()
	quoteID, orderID := "q-bill-"+suffix, "o-bill-"+suffix
	line := func(id, offering string) grains.Line {
		return grains.Line{LineID: id, OfferingID: offering, Name: offering, Quantity: 1,
			UnitOneTime: "100.00", UnitMonthly: "10.00", OneTimeTotal: "100.00", MonthlyTotal: "10.00"}
	}
	sendCreate(t, e.p.Node, order.Create{QuoteID: quoteID, OrderID: orderID, CustomerID: "c-bill", Currency: "EUR",
		Lines: []grains.Line{line("1", "dia-1g"), line("2", "sdwan-license")}, OneTimeTotal: "200.00", MonthlyTotal: "20.00",
		PriceHash: "bill", AcceptedBy: "e2e", AcceptedAt: time.Now().UTC(), PlanVersion: plan.V2,
		TaskSLOSeconds: 120, CallbackTimeoutSeconds: callbackSeconds})
	return orderID
}

// billingTaskView is the task view's part the billing drills check.
type billingTaskView struct {
	Items []struct {
		TaskID         string            `json:"taskId"`
		Type           string            `json:"type"`
		Status         string            `json:"status"`
		CallbackChecks int               `json:"callbackChecks"`
		Result         map[string]string `json:"result"`
		Attempts       []struct {
			Operation, Outcome, Detail, ExternalKey string
		} `json:"attempts"`
	} `json:"items"`
}

// TestDrillBillingCallbackDropped: billing is asynchronous and every
// callback is lost. Each billing task awaits its callback; its durable
// callback timer (1s) fires; the worker queries billing by the idempotency
// key, finds the activation and completes the task; the order completes.
// Billing activated exactly once per line, and the task view shows the
// accepted call and the query.
func TestDrillBillingCallbackDropped(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{billingAsync: true, billingDrop: 1, billingDelay: 50 * time.Millisecond})
		bill := e.p.SimulatedBilling()
		mustf(t, bill != nil && bill.Async(), "the platform runs no asynchronous simulated billing")
		ops := e.api("ops")
		orderID := createBillingOrder(t, e, 1)

		done := awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if len(done.Fallout) != 0 {
			t.Fatalf("fallout on a reconciled order: %+v", done.Fallout)
		}
		effects := bill.Effects()
		st := bill.Stats()
		if len(effects) != 2 || st.Accepted != 2 || st.CallbacksDropped != 2 || st.CallbacksSent != 0 || st.Queries < 2 {
			t.Fatalf("billing effects %d, stats %+v: want one activation per line, both callbacks dropped, queries", len(effects), st)
		}
		refs := map[string]string{}
		for _, ef := range effects {
			refs[ef.Key] = ef.Receipt.Ref
		}

		var view billingTaskView
		ops.call(t, http.MethodGet, "/v1/orders/"+orderID+"/tasks", nil).expect(t, "tasks", 200).decode(t, &view)
		billed := 0
		for _, it := range view.Items {
			if it.Type != plan.TypeActivateBilling {
				continue
			}
			billed++
			key := fulfillment.ExternalKey(string(platform.DemoTenant), it.TaskID)
			if it.Status != "done" || it.CallbackChecks < 1 || it.Result["externalRef"] != refs[key] || refs[key] == "" {
				t.Fatalf("billing task %+v: want done by a query, with the activation's reference %q", it, refs[key])
			}
			var accepted, found bool
			for _, a := range it.Attempts {
				switch {
				case a.Operation == "activate" && strings.HasPrefix(a.Detail, "accepted") && a.ExternalKey == key:
					accepted = true
				case a.Operation == "query" && a.Detail == "found "+refs[key] && a.ExternalKey == key:
					found = true
				}
			}
			if !accepted || !found {
				t.Fatalf("billing task %s attempts %+v: want the accepted activation and the query that found it", it.TaskID, it.Attempts)
			}
		}
		mustf(t, billed == 2, "task view has %d billing tasks, want 2", billed)
		// The order awaited the callbacks and its timer asked for the
		// queries: both are in the audit trail.
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID})
		if countActions(trail, order.CmdAwaitTask) < 2 || countActions(trail, order.CmdCheckCallback) < 2 {
			t.Fatalf("audit trail: %d awaitTask, %d checkCallback; want at least 2 each", countActions(trail, order.CmdAwaitTask),
				countActions(trail, order.CmdCheckCallback))
		}
	})
}

// TestBillingCallbackEndpoint: callbacks delivered over HTTP complete the
// order without any query; a repeated callback replays; a callback naming
// another tenant's order or key is 404; a token without the billing role
// is 403; the NATS subject answers the same.
func TestBillingCallbackEndpoint(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{billingAsync: true, billingDelay: 50 * time.Millisecond})
		bill := e.p.SimulatedBilling()
		ops := e.api("ops")
		orderID := createBillingOrder(t, e, 0)
		awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		st := bill.Stats()
		if len(bill.Effects()) != 2 || st.CallbacksSent != 2 || st.CallbackErrors != 0 || st.Queries != 0 {
			t.Fatalf("billing stats %+v: want two activations reported by callback, no query", st)
		}
		var view billingTaskView
		ops.call(t, http.MethodGet, "/v1/orders/"+orderID+"/tasks", nil).expect(t, "tasks", 200).decode(t, &view)
		for _, it := range view.Items {
			if it.Type == plan.TypeActivateBilling && (it.Result["via"] != "callback" || it.CallbackChecks != 0) {
				t.Fatalf("billing task %+v: want completed by its callback", it)
			}
		}

		task := plan.LineTaskID(orderID, "1", plan.TypeActivateBilling)
		key := fulfillment.ExternalKey(string(platform.DemoTenant), task)
		var ref string
		for _, ef := range bill.Effects() {
			if ef.Key == key {
				ref = ef.Receipt.Ref
			}
		}
		body := map[string]any{"orderId": orderID, "taskId": "1/" + plan.TypeActivateBilling, "status": "active", "billingRef": ref}
		demo := e.token(platform.DemoTenant, "billing")
		r := postCallback(t, e, demo, body)
		if r.Status != 200 || r.Header["Idempotent-Replayed"] != "true" {
			t.Fatalf("repeated callback: %d %v %s", r.Status, r.Header, r.Body)
		}
		// Contradicting a done task: the grain refuses.
		postCallback(t, e, demo, map[string]any{"externalKey": key, "status": "rejected", "reason": "late"}).
			expectProblem(t, "rejected after active", 409, "invalid_transition")
		// Another tenant's billing system cannot see demo's order.
		other := e.token("acme", "billing")
		postCallback(t, e, other, body).expectProblem(t, "callback for another tenant's order", 404, "not_found")
		postCallback(t, e, other, map[string]any{"externalKey": key, "status": "active", "billingRef": ref}).
			expectProblem(t, "callback with another tenant's key", 404, "not_found")
		postCallback(t, e, e.token(platform.DemoTenant, "ops", "sales"), body).expectProblem(t, "callback without the billing role", 403, "forbidden")
		postCallback(t, e, demo, map[string]any{"orderId": orderID, "taskId": task, "status": "paid"}).
			expectProblem(t, "bad status", 422, "validation_failed")

		// NATS: the same endpoint on grainline.<tenant>.order.billingCallback.
		nd := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "acme", other)
		nd.do(t, grains.KindOrder, "billingCallback", "", body, opts{}).expectProblem(t, "NATS callback for another tenant's order", 404, "not_found")
		nd = newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, demo)
		if r := nd.do(t, grains.KindOrder, "billingCallback", "", body, opts{}); r.Status != 200 || !r.Replayed {
			t.Fatalf("NATS repeated callback: %d replayed=%v %s", r.Status, r.Replayed, r.Body)
		}
	})
}

// postCallback posts a billing callback with token.
func postCallback(t *testing.T, e *env, token string, body any) reply {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+e.p.HTTPAddr+"/v1/callbacks/billing", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: out,
		Header: map[string]string{"Idempotent-Replayed": resp.Header.Get("Idempotent-Replayed")}}
	if r.ContentType == "application/problem+json" {
		r.Code = r.problem(t).Code
	}
	return r
}
