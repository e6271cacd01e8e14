package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
)

// Failure drills: fulfillment goes wrong at the (simulated) external systems
// and operations recovers through the API, against the real services in
// both modes.

// drillSystems are the simulators of one drill, with the knobs the drill
// turns: a failing inventory, gates that hold a call of one order until
// released, and a billing system whose outcome stays unknown.
type drillSystems struct {
	inv  *sim.Inventory
	prov *sim.Provisioning
	bill *sim.Billing
	note *sim.Notification

	invFailing  atomic.Bool // every reservation fails technically
	invUnknown  atomic.Bool // every reservation and query times out
	billUnknown atomic.Bool // every activation and query times out

	mu    sync.Mutex
	gates map[string]chan struct{} // "<type>/<orderId>" -> closed to let the call through
}

func newDrillSystems(t *testing.T) *drillSystems {
	t.Helper()
	d := &drillSystems{gates: map[string]chan struct{}{}}
	var err error
	// FailureRate 0.5 with a draw of 0.1 fails, 0.9 succeeds.
	if d.inv, err = sim.NewInventory(sim.Config{FailureRate: 0.5, Rand: func() float64 {
		if d.invFailing.Load() {
			return 0.1
		}
		return 0.9
	}}); err != nil {
		t.Fatal(err)
	}
	if d.prov, err = sim.NewProvisioning(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	if d.bill, err = sim.NewBilling(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	if d.note, err = sim.NewNotification(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // never leave a worker blocked
		d.mu.Lock()
		defer d.mu.Unlock()
		for k, g := range d.gates {
			close(g)
			delete(d.gates, k)
		}
	})
	return d
}

func (d *drillSystems) adapters() *fulfillment.Adapters {
	return &fulfillment.Adapters{Inventory: unknownInventory{d}, Provisioning: gatedProvisioning{d}, Billing: unknownBilling{d},
		Notification: gatedNotification{d}}
}

// hold makes calls of taskType for orderID wait until release.
func (d *drillSystems) hold(taskType, orderID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gates[taskType+"/"+orderID] = make(chan struct{})
}

func (d *drillSystems) release(taskType, orderID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g, ok := d.gates[taskType+"/"+orderID]; ok {
		close(g)
		delete(d.gates, taskType+"/"+orderID)
	}
}

func (d *drillSystems) wait(ctx context.Context, taskType, orderID string) error {
	d.mu.Lock()
	g, ok := d.gates[taskType+"/"+orderID]
	d.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type gatedProvisioning struct{ d *drillSystems }

func (g gatedProvisioning) Provision(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if err := g.d.wait(ctx, req.TaskType, req.OrderID); err != nil {
		return fulfillment.Receipt{}, err
	}
	return g.d.prov.Provision(ctx, req)
}

func (g gatedProvisioning) Query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	return g.d.prov.Query(ctx, key)
}

func (g gatedProvisioning) Deprovision(ctx context.Context, key string) error {
	return g.d.prov.Deprovision(ctx, key)
}

type gatedNotification struct{ d *drillSystems }

func (g gatedNotification) Notify(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if err := g.d.wait(ctx, req.TaskType, req.OrderID); err != nil {
		return fulfillment.Receipt{}, err
	}
	return g.d.note.Notify(ctx, req)
}

var errBillingTimeout = errors.New("billing: no reply within the deadline")

var errInventoryTimeout = errors.New("inventory: no reply within the deadline")

type unknownInventory struct{ d *drillSystems }

func (u unknownInventory) Reserve(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if u.d.invUnknown.Load() {
		return fulfillment.Receipt{}, errInventoryTimeout
	}
	return u.d.inv.Reserve(ctx, req)
}

func (u unknownInventory) Query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	if u.d.invUnknown.Load() {
		return fulfillment.Receipt{}, false, errInventoryTimeout
	}
	return u.d.inv.Query(ctx, key)
}

func (u unknownInventory) Release(ctx context.Context, key string) error {
	return u.d.inv.Release(ctx, key)
}

type unknownBilling struct{ d *drillSystems }

func (u unknownBilling) Activate(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if u.d.billUnknown.Load() {
		return fulfillment.Receipt{}, errBillingTimeout
	}
	return u.d.bill.Activate(ctx, req)
}

func (u unknownBilling) Query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	if u.d.billUnknown.Load() {
		return fulfillment.Receipt{}, false, errBillingTimeout
	}
	return u.d.bill.Query(ctx, key)
}

// api calls the HTTP API with one token.
type api struct {
	base, token string
	hc          *http.Client
}

func (e *env) api(roles ...string) api {
	return api{base: "http://" + e.p.HTTPAddr, token: e.token(platform.DemoTenant, roles...), hc: &http.Client{Timeout: 30 * time.Second}}
}

func (a api) call(t *testing.T, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), ETag: resp.Header.Get("ETag"),
		Body: b, Header: map[string]string{"Location": resp.Header.Get("Location")}}
	if r.ContentType == "application/problem+json" {
		r.Code = r.problem(t).Code
	}
	return r
}

// createV2Order creates an order of plan version 2 with one line of
// offering directly at the order grain, as the intake would from an
// accepted quote, and returns its id.
func createV2Order(t *testing.T, e *env, offering string) string {
	t.Helper()
	return createV2OrderSLO(t, e, offering, 0)
}

// createV2OrderSLO is createV2Order with a task SLO in seconds (0: the
// default).
func createV2OrderSLO(t *testing.T, e *env, offering string, sloSeconds int) string {
	t.Helper()
	suffix := testenv.RandomSuffix()
	quoteID, orderID := "q-drill-"+suffix, "o-drill-"+suffix
	sendCreate(t, e.p.Node, order.Create{QuoteID: quoteID, OrderID: orderID, CustomerID: "c-drill", Currency: "EUR",
		Lines: []grains.Line{{LineID: "1", OfferingID: offering, Name: offering, Quantity: 1,
			UnitOneTime: "100.00", UnitMonthly: "10.00", OneTimeTotal: "100.00", MonthlyTotal: "10.00"}},
		OneTimeTotal: "100.00", MonthlyTotal: "10.00", PriceHash: "drill", AcceptedBy: "e2e",
		AcceptedAt: time.Now().UTC(), PlanVersion: plan.V2, TaskSLOSeconds: sloSeconds})
	return orderID
}

// sendCreate sends c to the order grain through send, as the intake does
// for an accepted quote (actor intake, role system).
func sendCreate(t *testing.T, send call.Sender, c order.Create) {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := send.Send(ctx, call.Command{Tenant: platform.DemoTenant, Kind: grains.KindOrder, ID: c.OrderID,
		Name: order.CmdCreate, Payload: payload, IdempotencyKey: "create-" + c.OrderID, Actor: "intake",
		Roles: []string{order.RoleSystem}}); err != nil {
		t.Fatalf("create order %s: %v", c.OrderID, err)
	}
}

// awaitOrderState polls the order until cond holds and returns it.
func awaitOrderState(t *testing.T, a api, orderID, what string, cond func(order.State) bool) order.State {
	t.Helper()
	var s order.State
	eventually(t, journeyTimeout, func() (bool, string) {
		r := a.call(t, http.MethodGet, "/v1/orders/"+orderID, nil)
		if r.Status != 200 {
			return false, fmt.Sprintf("get order: %d %s", r.Status, r.Body)
		}
		s = order.State{}
		r.decode(t, &s)
		return cond(s), fmt.Sprintf("order %s is not %s: %s", orderID, what, r.Body)
	})
	return s
}

func taskStatus(s order.State, taskID string) order.TaskStatus {
	for _, tk := range s.Tasks {
		if tk.TaskID == taskID {
			return tk.Status
		}
	}
	return ""
}

// taskPath is the API path of a task recovery command.
func taskPath(orderID, taskID, verb string) string {
	return "/v1/orders/" + orderID + "/tasks/" + url.PathEscape(taskID) + "/" + verb
}

// requireRefusalAudited fails the test unless the order's audit trail has a
// refusal of action with code, by the drill's token subject.
func requireRefusalAudited(t *testing.T, e *env, orderID, action, code string) {
	t.Helper()
	trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID})
	for _, a := range trail {
		var d struct {
			Outcome, Code, CommandReason string
		}
		if a.Action != action || json.Unmarshal(a.Detail, &d) != nil {
			continue
		}
		if d.Outcome == "refused" && d.Code == code && a.Actor == "e2e-demo" && d.CommandReason != "" {
			return
		}
	}
	t.Fatalf("audit trail of %s has no refused %s (%s) with the command's reason: %+v", orderID, action, code, trail)
}

// TestDrillRetriesExhausted: every reservation fails until the worker's
// attempts run out; the order opens a fallout case owned by the ops queue
// and is held. Ops takes the case and, once the inventory is back, retries
// the task by hand: the order completes, and the audit trail has the retry
// with its reason.
func TestDrillRetriesExhausted(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		sys.invFailing.Store(true)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		ops, sales := e.api("ops"), e.api("sales")
		orderID := createV2Order(t, e, "dia-1g")
		reserve := plan.LineTaskID(orderID, "1", plan.TypeReserveInventory)

		held := awaitOrderState(t, ops, orderID, "held", func(s order.State) bool { return s.Status == order.StatusHeld })
		if taskStatus(held, reserve) != order.TaskStatusFailed || held.Tasks[0].Outcome != order.OutcomeFailed {
			t.Fatalf("held order's tasks: %+v", held.Tasks)
		}
		if st := sys.inv.Stats(); st.Failures < 2 || st.Effects != 0 {
			t.Fatalf("inventory stats %+v: want several failed calls and no reservation", st)
		}
		var list struct {
			OrderID string              `json:"orderId"`
			Status  order.Status        `json:"status"`
			Items   []order.FalloutCase `json:"items"`
		}
		ops.call(t, http.MethodGet, "/v1/orders/"+orderID+"/fallout", nil).expect(t, "fallout", 200).decode(t, &list)
		if len(list.Items) != 1 || list.Status != order.StatusHeld {
			t.Fatalf("fallout %+v, want one case on a held order", list)
		}
		fc := list.Items[0]
		if fc.TaskID != reserve || fc.Cause != order.CauseRetriesExhausted || fc.Owner != order.DefaultFalloutQueue || fc.Status != order.CaseOpen {
			t.Fatalf("case %+v, want an open retries_exhausted case for %s owned by the ops queue", fc, reserve)
		}

		// Only ops recovers, and never without a reason.
		sales.call(t, http.MethodPost, taskPath(orderID, reserve, "retry"), map[string]any{"reason": "x"}).
			expectProblem(t, "retry by sales", 403, "forbidden")
		ops.call(t, http.MethodPost, taskPath(orderID, reserve, "retry"), map[string]any{}).
			expectProblem(t, "retry without reason", 422, "validation_failed")

		ops.call(t, http.MethodPost, "/v1/orders/"+orderID+"/fallout/"+fc.ID+"/assign", map[string]any{"owner": "olga", "note": "taking it"}).
			expect(t, "assign", 200)
		sys.invFailing.Store(false)
		ops.call(t, http.MethodPost, taskPath(orderID, reserve, "retry"), map[string]any{"reason": "inventory back online"}).
			expect(t, "retry", 200)

		done := awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if len(done.Fallout) != 1 || done.Fallout[0].Status != order.CaseResolved || done.Fallout[0].Owner != "olga" ||
			done.Fallout[0].Resolution != order.ResolutionRetried || done.Tasks[0].Attempt != 2 {
			t.Fatalf("completed order: fallout %+v, tasks %+v", done.Fallout, done.Tasks)
		}
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID})
		found := false
		for _, a := range trail {
			if a.Action == order.CmdRetryTask {
				found = a.Reason == "inventory back online" && a.Actor == "e2e-demo"
			}
		}
		if !found {
			t.Fatalf("audit trail of %s has no retryTask by e2e-demo with its reason: %+v", orderID, trail)
		}
	})
}

// TestDrillCancel: a cancel before the point of no return (provisioning in
// flight) waits for provisioning, then runs the compensations in reverse
// order of completion, deprovision before releaseReservation, as the
// simulators record, and the order ends cancelled. A cancel once billing was
// requested is refused with point_of_no_return and changes nothing.
func TestDrillCancel(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		sales := e.api("sales")

		orderID := createV2Order(t, e, "dia-1g")
		sys.hold(plan.TypeProvision, orderID)
		provision := plan.LineTaskID(orderID, "1", plan.TypeProvision)
		awaitOrderState(t, sales, orderID, "provisioning", func(s order.State) bool { return taskStatus(s, provision) == order.TaskStatusPending })

		r := sales.call(t, http.MethodPost, "/v1/cancelProductOrder", map[string]any{"productOrderId": orderID, "reason": "customer withdrew"}).
			expect(t, "cancelProductOrder", 201)
		var cr struct {
			ID, State, ProductOrderID, OrderStatus string
		}
		r.decode(t, &cr)
		if cr.ID != order.CancelID(orderID) || cr.State != string(order.CancelAcknowledged) || cr.OrderStatus != string(order.StatusAssessingCancellation) ||
			r.Header["Location"] != "/v1/cancelProductOrder/"+cr.ID {
			t.Fatalf("cancel request %+v (%v)", cr, r.Header)
		}
		sys.release(plan.TypeProvision, orderID)

		done := awaitOrderState(t, sales, orderID, "cancelled", func(s order.State) bool { return s.Status == order.StatusCancelled })
		pe, ie := sys.prov.Effects(), sys.inv.Effects()
		if len(pe) != 1 || len(ie) != 1 || !pe[0].Undone || !ie[0].Undone {
			t.Fatalf("effects: provisioning %+v, inventory %+v; want both undone", pe, ie)
		}
		if pe[0].UndoSeq >= ie[0].UndoSeq {
			t.Fatalf("deprovision (undo %d) did not run before releaseReservation (undo %d)", pe[0].UndoSeq, ie[0].UndoSeq)
		}
		if st := sys.bill.Stats(); st.Calls != 0 {
			t.Fatalf("billing was called %d times on a cancelled order", st.Calls)
		}
		// Nothing is deleted: the forward tasks keep their history.
		if taskStatus(done, provision) != order.TaskStatusDone || len(done.Tasks) != 6 || done.Items[0].State != order.StatusCancelled {
			t.Fatalf("cancelled order: tasks %+v items %+v", done.Tasks, done.Items)
		}
		sales.call(t, http.MethodGet, "/v1/cancelProductOrder/"+cr.ID, nil).expect(t, "get cancel request", 200).decode(t, &cr)
		if cr.State != string(order.CancelDone) || cr.OrderStatus != string(order.StatusCancelled) {
			t.Fatalf("cancel request after the compensations: %+v", cr)
		}

		// Past the point of no return: billing is done, the notification
		// is held.
		late := createV2Order(t, e, "dia-1g")
		sys.hold(plan.TypeNotify, late)
		billing := plan.LineTaskID(late, "1", plan.TypeActivateBilling)
		awaitOrderState(t, sales, late, "billed", func(s order.State) bool { return taskStatus(s, billing) == order.TaskStatusDone })
		etag := sales.call(t, http.MethodGet, "/v1/orders/"+late, nil).expect(t, "get", 200).ETag
		sales.call(t, http.MethodPost, "/v1/cancelProductOrder", map[string]any{"productOrderId": late, "reason": "too late"}).
			expectProblem(t, "cancel after billing", 409, "point_of_no_return")
		sales.call(t, http.MethodPost, "/v1/orders/"+late+"/cancel", map[string]any{"reason": "too late"}).
			expectProblem(t, "cancel after billing (order path)", 409, "point_of_no_return")
		after := sales.call(t, http.MethodGet, "/v1/orders/"+late, nil).expect(t, "get", 200)
		if after.ETag != etag {
			t.Fatalf("a refused cancel changed the order: %s -> %s", etag, after.ETag)
		}
		sales.call(t, http.MethodGet, "/v1/cancelProductOrder/"+order.CancelID(late), nil).expectProblem(t, "no cancel request", 404, "not_found")
		requireRefusalAudited(t, e, late, order.CmdCancel, "point_of_no_return")
		sys.release(plan.TypeNotify, late)
		awaitOrderState(t, sales, late, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
	})
}

// TestDrillStuckTask: provisioning hangs at the external system. The
// order's durable stuck timer fires after the task SLO (2s here) with no
// progress and opens a worker_silent case; the order is held. When the
// call finally returns, the late result resolves the case and the order
// completes.
func TestDrillStuckTask(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		ops := e.api("ops")
		orderID := createV2OrderSLO(t, e, "dia-1g", 2)
		sys.hold(plan.TypeProvision, orderID)
		provision := plan.LineTaskID(orderID, "1", plan.TypeProvision)

		held := awaitOrderState(t, ops, orderID, "held", func(s order.State) bool { return s.Status == order.StatusHeld })
		if len(held.Fallout) != 1 || held.Fallout[0].TaskID != provision || held.Fallout[0].Cause != order.CauseWorkerSilent ||
			taskStatus(held, provision) != order.TaskStatusPending {
			t.Fatalf("held order: fallout %+v tasks %+v", held.Fallout, held.Tasks)
		}
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID})
		if n := countActions(trail, order.CmdCheckProgress); n != 1 {
			t.Fatalf("audit trail has %d checkProgress records, want the timer's one: %+v", n, trail)
		}
		sys.release(plan.TypeProvision, orderID)
		done := awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if done.Fallout[0].Status != order.CaseResolved || done.Fallout[0].Resolution != order.ResolutionCompletedByWorker {
			t.Fatalf("case after the late result: %+v", done.Fallout[0])
		}
	})
}

// TestDrillUnsafeRecovery: billing times out and no query resolves it, so
// the task fails with an unknown outcome. Completing or skipping it by hand
// could leave the customer charged without service, or served without
// charge: both are refused with 409 billing_outcome_unknown and the order is
// unchanged, and both refusals are audited. A retry is safe (the billing system dedupes by key) and
// completes the order.
func TestDrillUnsafeRecovery(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		sys.billUnknown.Store(true)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		ops := e.api("ops")
		orderID := createV2Order(t, e, "dia-1g")
		billing := plan.LineTaskID(orderID, "1", plan.TypeActivateBilling)

		held := awaitOrderState(t, ops, orderID, "held", func(s order.State) bool { return s.Status == order.StatusHeld })
		if len(held.Fallout) != 1 || held.Fallout[0].TaskID != billing || held.Fallout[0].Cause != order.CauseUnknownOutcome {
			t.Fatalf("held order's fallout %+v", held.Fallout)
		}
		etag := ops.call(t, http.MethodGet, "/v1/orders/"+orderID, nil).expect(t, "get", 200).ETag
		ops.call(t, http.MethodPost, taskPath(orderID, billing, "complete"), map[string]any{"reason": "customer says it works", "evidence": "call 42"}).
			expectProblem(t, "complete billing of unknown outcome", 409, "billing_outcome_unknown")
		// The relative form of the task in the path reaches the same task.
		ops.call(t, http.MethodPost, "/v1/orders/"+orderID+"/tasks/"+url.PathEscape("1/"+plan.TypeActivateBilling)+"/skip", map[string]any{"reason": "skip billing"}).
			expectProblem(t, "skip billing of unknown outcome", 409, "billing_outcome_unknown")
		if got := ops.call(t, http.MethodGet, "/v1/orders/"+orderID, nil).expect(t, "get", 200).ETag; got != etag {
			t.Fatalf("a refused recovery changed the order: %s -> %s", etag, got)
		}
		// Both refusals are in the audit chain, with who tried and why.
		for _, action := range []string{order.CmdCompleteTaskManually, order.CmdSkipTask} {
			requireRefusalAudited(t, e, orderID, action, "billing_outcome_unknown")
		}

		sys.billUnknown.Store(false)
		ops.call(t, http.MethodPost, taskPath(orderID, billing, "retry"), map[string]any{"reason": "billing reachable again"}).expect(t, "retry billing", 200)
		awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if n := len(sys.bill.Effects()); n != 1 {
			t.Fatalf("billing has %d activations, want 1", n)
		}
	})
}

// TestDrillReconcileFirst: the inventory times out and no query resolves it,
// so the reservation's outcome is unknown. Retrying it blind could reserve
// twice: 409 reconcile_first. Ops checks the inventory, records the
// reservation absent, and the retry then completes the order.
func TestDrillReconcileFirst(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		sys.invUnknown.Store(true)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		ops := e.api("ops")
		orderID := createV2Order(t, e, "dia-1g")
		reserve := plan.LineTaskID(orderID, "1", plan.TypeReserveInventory)

		held := awaitOrderState(t, ops, orderID, "held", func(s order.State) bool { return s.Status == order.StatusHeld })
		if len(held.Fallout) != 1 || held.Fallout[0].Cause != order.CauseUnknownOutcome || held.Tasks[0].Outcome != order.OutcomeUnknown {
			t.Fatalf("held order: fallout %+v tasks %+v", held.Fallout, held.Tasks)
		}
		ops.call(t, http.MethodPost, taskPath(orderID, reserve, "retry"), map[string]any{"reason": "try again"}).
			expectProblem(t, "blind retry", 409, "reconcile_first")
		requireRefusalAudited(t, e, orderID, order.CmdRetryTask, "reconcile_first")
		sys.invUnknown.Store(false)
		ops.call(t, http.MethodPost, taskPath(orderID, reserve, "reconcile"),
			map[string]any{"reason": "checked the inventory", "effect": "absent", "evidence": "no reservation under the key"}).expect(t, "reconcile", 200)
		ops.call(t, http.MethodPost, taskPath(orderID, reserve, "retry"), map[string]any{"reason": "reconciled: absent"}).expect(t, "retry", 200)
		awaitOrderState(t, ops, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if n := len(sys.inv.Effects()); n != 1 {
			t.Fatalf("inventory has %d reservations, want 1", n)
		}
	})
}
