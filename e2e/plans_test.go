package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/streams/fulfillment"
)

// TestDrillPlanV2DeployedWhileV1Runs: a deployment whose default plan is
// version 1 has an order running (its provision call hangs at the system);
// it is stopped mid-call and the next deployment, with default version 2, is
// started on the same database and topics. The new deployment's worker
// resumes the v1 task from its attempt records, the v1 order completes with
// its one task, a new order pins v2 and completes with the v2 tasks, and
// the v1 provisioning happened once.
func TestDrillPlanV2DeployedWhileV1Runs(t *testing.T) {
	sys := newDrillSystems(t)
	first := startPlatform(t, real, platformOpts{systems: sys.adapters(), planDefault: 1})
	d := newHTTPDoor(first.p.HTTPAddr, first.salesApprover())
	eventually(t, journeyTimeout, func() (bool, string) {
		r := d.request(t, "GET", "/readyz", nil, opts{})
		return r.Status == 200, fmt.Sprintf("/readyz %d", r.Status)
	})
	q1 := toApproved(t, d, "sdwan-edge-m")
	o1 := order.IDForQuote(q1)
	sys.hold(fulfillment.TypeProvision, o1)
	acceptDocument(t, d, q1, renderDocument(t, d, q1))
	eventually(t, journeyTimeout, func() (bool, string) {
		var ts orderTasks
		r := d.do(t, grains.KindOrder, "tasks", o1, nil, opts{})
		if r.Status != 200 {
			return false, fmt.Sprintf("tasks: %d", r.Status)
		}
		r.decode(t, &ts)
		return len(ts.Items) == 1 && len(ts.Items[0].Attempts) == 1 && ts.Items[0].Attempts[0].Outcome == "started",
			fmt.Sprintf("v1 task not yet at the system: %s", r.Body)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := first.p.Close(ctx); err != nil {
		t.Fatalf("stop the v1 deployment: %v", err)
	}

	second := startPlatform(t, real, platformOpts{systems: sys.adapters(), after: first})
	d = newHTTPDoor(second.p.HTTPAddr, second.salesApprover())
	eventually(t, journeyTimeout, func() (bool, string) {
		r := d.request(t, "GET", "/readyz", nil, opts{})
		return r.Status == 200, fmt.Sprintf("/readyz %d", r.Status)
	})
	q2 := toApproved(t, d, "sdwan-edge-m")
	acceptDocument(t, d, q2, renderDocument(t, d, q2))
	sys.release(fulfillment.TypeProvision, o1)

	v2 := awaitOrder(t, d, q2, order.StatusCompleted)
	if v2.PlanVersion != 2 || len(v2.Tasks) != 4 || !allTasksDone(v2) {
		t.Fatalf("new order: plan %d, tasks %+v", v2.PlanVersion, v2.Tasks)
	}
	v1 := awaitOrder(t, d, q1, order.StatusCompleted)
	if v1.PlanVersion != 1 || len(v1.Tasks) != 1 || v1.Tasks[0].Type != fulfillment.TypeProvision || !allTasksDone(v1) {
		t.Fatalf("v1 order: plan %d, tasks %+v", v1.PlanVersion, v1.Tasks)
	}
	var ts orderTasks
	d.do(t, grains.KindOrder, "tasks", o1, nil, opts{}).expect(t, "tasks", 200).decode(t, &ts)
	at := ts.Items[0].Attempts
	if len(at) < 2 || at[0].Operation != "provision" || at[1].Operation != "query" {
		t.Fatalf("v1 task attempts %+v: the new worker must query before it calls again", at)
	}
	n := 0
	for _, ef := range sys.prov.Effects() {
		if strings.HasSuffix(ef.Key, ":"+ts.Items[0].TaskID) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d provisionings of the v1 task, want 1", n)
	}
}
