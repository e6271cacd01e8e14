package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
)

// createOrderLines creates a plan version 2 order with lines at the order
// grain, as the intake would from an accepted quote.
func createOrderLines(t *testing.T, e *env, orderID string, lines []grains.Line) {
	t.Helper()
	sendCreate(t, e.p.Node, order.Create{QuoteID: "q" + orderID[1:], OrderID: orderID, CustomerID: "c-drill", Currency: "EUR",
		Lines: lines, OneTimeTotal: "300.00", MonthlyTotal: "30.00", PriceHash: "drill", AcceptedBy: "e2e",
		AcceptedAt: time.Now().UTC(), PlanVersion: plan.V2})
}

func drillLine(id, offering string, qty int) grains.Line {
	return grains.Line{LineID: id, OfferingID: offering, Name: offering, Quantity: qty,
		UnitOneTime: "100.00", UnitMonthly: "10.00", OneTimeTotal: "100.00", MonthlyTotal: "10.00"}
}

// effectOf returns the simulator's effect of the task taskID.
func effectOf(t *testing.T, effects []sim.Effect, taskID string) sim.Effect {
	t.Helper()
	key := fulfillment.ExternalKey(string(platform.DemoTenant), taskID)
	for _, ef := range effects {
		if ef.Key == key {
			return ef
		}
	}
	t.Fatalf("no effect under %s in %+v", key, effects)
	return sim.Effect{}
}

func quantityOf(t *testing.T, ef sim.Effect) int {
	t.Helper()
	var lines []grains.Line
	if err := json.Unmarshal(ef.Request.Lines, &lines); err != nil || len(lines) != 1 {
		t.Fatalf("effect %s: lines %s (%v)", ef.Key, ef.Request.Lines, err)
	}
	return lines[0].Quantity
}

// TestDrillAmend: an order of three lines is held before its point of no
// return (provisioning held at the external system, every reservation
// made). A change order modifies line 1 (quantity 1 -> 2), deletes line 2,
// keeps line 3 and adds line 4. Once provisioning lets go, the retired
// provisioning and reservation of lines 1 and 2 are undone in reverse order
// (deprovision before release), line 1 is reserved, provisioned and billed
// again under new task ids with the new quantity, line 4 runs, line 2 is
// never billed, and the order completes with the item actions
// modify/delete/noChange/add. A replay of the amend returns the first
// result; a stale If-Match is refused. An amend once billing was requested
// is refused with point_of_no_return at both doors, changes nothing and is
// audited.
func TestDrillAmend(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		sys := newDrillSystems(t)
		e := startPlatform(t, m, platformOpts{systems: sys.adapters()})
		salesToken := e.token(platform.DemoTenant, order.RoleSales)
		sales := newHTTPDoor(e.p.HTTPAddr, salesToken)
		salesNATS := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, salesToken)
		a := e.api(order.RoleSales)

		orderID := "o-amend-" + testenv.RandomSuffix()
		sys.hold(plan.TypeProvision, orderID)
		createOrderLines(t, e, orderID, []grains.Line{drillLine("1", "dia-1g", 1), drillLine("2", "dia-1g", 1), drillLine("3", "sdwan-license", 5)})
		id := func(line, typ string) string { return plan.LineTaskID(orderID, line, typ) }
		awaitOrderState(t, a, orderID, "reserved, provisioning held", func(s order.State) bool {
			return taskStatus(s, id("1", plan.TypeReserveInventory)) == order.TaskStatusDone &&
				taskStatus(s, id("2", plan.TypeReserveInventory)) == order.TaskStatusDone &&
				taskStatus(s, id("1", plan.TypeProvision)) == order.TaskStatusPending &&
				taskStatus(s, id("2", plan.TypeProvision)) == order.TaskStatusPending
		})
		etag := sales.do(t, grains.KindOrder, "get", orderID, nil, opts{}).expect(t, "get", 200).ETag

		intent := map[string]any{"reason": "customer changed the order", "lines": []map[string]any{
			{"lineId": "1", "offeringId": "dia-1g", "quantity": 2},
			{"lineId": "3", "offeringId": "sdwan-license", "quantity": 5},
			{"lineId": "4", "offeringId": "dia-1g", "name": "second site", "quantity": 1},
		}}
		key := "amend-" + orderID
		first := sales.do(t, grains.KindOrder, order.CmdAmend, orderID, intent, opts{idemKey: key, ifMatch: etag}).expect(t, "amend", 200)
		var amended order.State
		first.decode(t, &amended)
		if len(amended.Amendments) != 1 || amended.Amendments[0].By != "e2e-demo" || len(amended.Amendments[0].Changes) != 4 {
			t.Fatalf("amendments %+v", amended.Amendments)
		}
		wantActions := map[string]order.Action{"1": order.ActionModify, "2": order.ActionDelete, "3": order.ActionNoChange, "4": order.ActionAdd}
		for _, it := range amended.Items {
			if it.Action != wantActions[it.ID] {
				t.Fatalf("item %s action %s, want %s (items %+v)", it.ID, it.Action, wantActions[it.ID], amended.Items)
			}
		}
		if amended.OneTimeTotal != "300.00" || amended.MonthlyTotal != "30.00" {
			t.Fatalf("totals changed: %s %s", amended.OneTimeTotal, amended.MonthlyTotal)
		}
		// The same request again: the first result, nothing new.
		again := sales.do(t, grains.KindOrder, order.CmdAmend, orderID, intent, opts{idemKey: key, ifMatch: etag}).expect(t, "amend replay", 200)
		if !again.Replayed || again.ETag != first.ETag {
			t.Fatalf("replay: replayed=%v etag %s, want the first result's %s", again.Replayed, again.ETag, first.ETag)
		}
		// Another intent on the revision before the amend: refused.
		sales.do(t, grains.KindOrder, order.CmdAmend, orderID, map[string]any{"reason": "stale", "lines": []map[string]any{
			{"lineId": "1", "offeringId": "dia-1g", "quantity": 7}}}, opts{ifMatch: etag}).
			expectProblem(t, "amend on a stale revision", 412, "revision_mismatch")

		sys.release(plan.TypeProvision, orderID)
		done := awaitOrderState(t, a, orderID, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		for _, it := range done.Items {
			if it.Action != wantActions[it.ID] || it.State != order.StatusCompleted {
				t.Fatalf("completed order's items %+v", done.Items)
			}
		}
		redo := func(typ string) string { return plan.LineTaskIDAt(orderID, "1", 2, typ) }
		for _, tk := range []string{redo(plan.TypeReserveInventory), redo(plan.TypeProvision), redo(plan.TypeActivateBilling),
			id("3", plan.TypeActivateBilling), id("4", plan.TypeActivateBilling), order.TaskID(orderID, plan.TypeNotify)} {
			if taskStatus(done, tk) != order.TaskStatusDone {
				t.Fatalf("task %s is %s, want done: %+v", tk, taskStatus(done, tk), done.Tasks)
			}
		}
		for _, tk := range []string{id("1", plan.TypeActivateBilling), id("2", plan.TypeActivateBilling)} {
			if taskStatus(done, tk) != order.TaskStatusSuperseded {
				t.Fatalf("task %s is %s, want superseded", tk, taskStatus(done, tk))
			}
		}

		// The external systems: the modified and deleted lines' effects
		// undone, deprovision before release on each line; the redo under a
		// key of its own, with the new quantity.
		inv, prov := sys.inv.Effects(), sys.prov.Effects()
		for _, line := range []string{"1", "2"} {
			r, p := effectOf(t, inv, id(line, plan.TypeReserveInventory)), effectOf(t, prov, id(line, plan.TypeProvision))
			if !r.Undone || !p.Undone || p.UndoSeq >= r.UndoSeq {
				t.Fatalf("line %s: reservation %+v, provisioning %+v: want both undone, deprovision first", line, r, p)
			}
		}
		r1 := effectOf(t, inv, redo(plan.TypeReserveInventory))
		if r1.Undone || quantityOf(t, r1) != 2 || quantityOf(t, effectOf(t, inv, id("1", plan.TypeReserveInventory))) != 1 {
			t.Fatalf("line 1's new reservation %+v, want quantity 2 and kept", r1)
		}
		if r4 := effectOf(t, inv, id("4", plan.TypeReserveInventory)); r4.Undone {
			t.Fatalf("line 4's reservation undone: %+v", r4)
		}
		if p3 := effectOf(t, prov, id("3", plan.TypeProvision)); p3.Undone {
			t.Fatalf("the unchanged line's provisioning was undone: %+v", p3)
		}
		if len(inv) != 4 || len(prov) != 5 {
			t.Fatalf("inventory effects %d, provisioning effects %d; want 4 and 5", len(inv), len(prov))
		}
		billed := map[string]bool{}
		for _, ef := range sys.bill.Effects() {
			billed[ef.Key] = true
		}
		ext := func(taskID string) string { return fulfillment.ExternalKey(string(platform.DemoTenant), taskID) }
		if len(billed) != 3 || !billed[ext(redo(plan.TypeActivateBilling))] || !billed[ext(id("3", plan.TypeActivateBilling))] ||
			!billed[ext(id("4", plan.TypeActivateBilling))] {
			t.Fatalf("billing effects %v, want lines 1 (redone), 3 and 4", billed)
		}
		amendedEvents := 0
		for _, msg := range readTopic(t, e.kafkaClient(), e.topic(platform.TopicOrderEvents), orderID) {
			if header(msg, kafka.HeaderEventType) == order.EvAmended {
				amendedEvents++
			}
		}
		if amendedEvents != 1 {
			t.Fatalf("%d OrderAmended events published, want 1", amendedEvents)
		}

		// Past the point of no return: billing is done, the notification
		// is held. Refused at both doors; the order does not move.
		late := "o-amend-late-" + testenv.RandomSuffix()
		sys.hold(plan.TypeNotify, late)
		createOrderLines(t, e, late, []grains.Line{drillLine("1", "dia-1g", 1)})
		billing := plan.LineTaskID(late, "1", plan.TypeActivateBilling)
		awaitOrderState(t, a, late, "billed", func(s order.State) bool { return taskStatus(s, billing) == order.TaskStatusDone })
		before := sales.do(t, grains.KindOrder, "get", late, nil, opts{}).expect(t, "get", 200)
		tooLate := map[string]any{"reason": "too late", "lines": []map[string]any{{"lineId": "1", "offeringId": "dia-1g", "quantity": 3}}}
		r := sales.do(t, grains.KindOrder, order.CmdAmend, late, tooLate, opts{})
		r.expectProblem(t, "amend after billing", 409, "point_of_no_return")
		if p := r.problem(t); len(p.Violations) != 1 || p.Violations[0].Pointer != "/lines/0" || p.Violations[0].Code != order.ViolationPastPointOfNoReturn {
			t.Fatalf("violations %+v, want line 0 past its point of no return", p.Violations)
		}
		if r := salesNATS.do(t, grains.KindOrder, order.CmdAmend, late, tooLate, opts{}); r.Status != 409 || r.Code != "point_of_no_return" {
			t.Fatalf("NATS amend after billing: %d %q: %s", r.Status, r.Code, r.Body)
		}
		after := sales.do(t, grains.KindOrder, "get", late, nil, opts{}).expect(t, "get", 200)
		if after.ETag != before.ETag {
			t.Fatalf("a refused amend changed the order: %s -> %s", before.ETag, after.ETag)
		}
		requireRefusalAudited(t, e, late, order.CmdAmend, "point_of_no_return")
		sys.release(plan.TypeNotify, late)
		fin := awaitOrderState(t, a, late, "completed", func(s order.State) bool { return s.Status == order.StatusCompleted })
		if len(fin.Amendments) != 0 || fin.Items[0].Action != order.ActionAdd || fin.Lines[0].Quantity != 1 {
			t.Fatalf("refused amend left traces: %+v %+v", fin.Amendments, fin.Items)
		}
		// A finished order cannot be amended.
		sales.do(t, grains.KindOrder, order.CmdAmend, late, tooLate, opts{}).expectProblem(t, "amend a completed order", 409, "invalid_transition")
	})
}
