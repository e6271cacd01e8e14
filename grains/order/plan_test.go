package order_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
)

// createFor returns a create payload for quote q-N (order o-N) with lines
// of the given offerings and, when version > 0, a planVersion.
func createFor(n string, version int, offerings ...string) string {
	var lines []string
	for i, o := range offerings {
		lines = append(lines, `{"lineId":"`+string(rune('1'+i))+`","offeringId":"`+o+`","quantity":1}`)
	}
	p := `{"quoteId":"q-` + n + `","orderId":"o-` + n + `","customerId":"c-1","currency":"EUR","lines":[` +
		strings.Join(lines, ",") + `],"oneTimeTotal":"1.00","monthlyTotal":"0.00","priceHash":"h"`
	if version > 0 {
		p += `,"planVersion":` + string(rune('0'+version))
	}
	return p + `}`
}

func envFor(id string) grains.Env {
	e := env("system")
	e.ID = id
	return e
}

// run decides and folds cmd with b; it fails the test on an error.
func run(t *testing.T, b grains.Behavior[order.State], s order.State, id, name, payload string) (order.State, []grains.Event) {
	t.Helper()
	cmd, err := b.DecodeCommand(name, []byte(payload))
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	evs, err := b.Decide(s, cmd, envFor(id))
	if err != nil {
		t.Fatalf("%s %s: %v", name, payload, err)
	}
	return b.Fold(s, evs), evs
}

// finish completes requested tasks, in order, until the order stops being
// in progress; it returns the task ids in the order they were completed.
func finish(t *testing.T, b grains.Behavior[order.State], s order.State) (order.State, []string) {
	t.Helper()
	var done []string
	for guard := 0; s.Status == order.StatusInProgress; guard++ {
		if guard > 50 {
			t.Fatal("order does not finish")
		}
		next := ""
		for _, task := range s.Tasks {
			if task.Status == order.TaskStatusPending {
				next = task.TaskID
				break
			}
		}
		if next == "" {
			t.Fatalf("order %s in progress with no pending task: %+v", s.ID, s.Tasks)
		}
		s, _ = run(t, b, s, s.ID, "completeTask", `{"taskId":"`+next+`"}`)
		done = append(done, next)
	}
	return s, done
}

// TestRunningOrderKeepsItsPlanVersion: an order created while v1 was the
// default finishes on v1 after the default moves to v2 (and even after v1
// is withdrawn), while new orders pin v2.
func TestRunningOrderKeepsItsPlanVersion(t *testing.T) {
	onV1 := plan.Builtin()
	onV1.Default = plan.V1
	onV2 := plan.Builtin()
	onV2.Default = plan.V2
	onlyV2 := plan.Catalog{Default: plan.V2, Plans: onV2.Plans[1:]}
	before, err := order.NewBehavior(onV1)
	if err != nil {
		t.Fatal(err)
	}
	after, err := order.NewBehavior(onV2)
	if err != nil {
		t.Fatal(err)
	}
	withdrawn, err := order.NewBehavior(onlyV2)
	if err != nil {
		t.Fatal(err)
	}

	old, _ := run(t, before, order.State{}, "o-1", "create", createFor("1", 0, "sdwan-edge-m", "sdwan-license"))
	old2, _ := run(t, before, order.State{}, "o-2", "create", createFor("2", 0, "dia-1g"))
	if old.PlanVersion != 1 || len(old.Tasks) != 1 || old.Tasks[0].TaskID != "o-1/provision" {
		t.Fatalf("order created under default v1: version %d, tasks %+v", old.PlanVersion, old.Tasks)
	}

	// The default changes: new orders pin v2, or v1 when they ask for it.
	fresh, _ := run(t, after, order.State{}, "o-3", "create", createFor("3", 0, "sdwan-edge-m"))
	if fresh.PlanVersion != 2 || len(fresh.Tasks) != 4 {
		t.Fatalf("new order under default v2: version %d, %d tasks", fresh.PlanVersion, len(fresh.Tasks))
	}
	asked, _ := run(t, after, order.State{}, "o-4", "create", createFor("4", 1, "sdwan-edge-m"))
	if asked.PlanVersion != 1 || len(asked.Tasks) != 1 {
		t.Fatalf("order asking for v1: version %d, %d tasks", asked.PlanVersion, len(asked.Tasks))
	}

	// The running v1 orders finish on v1, with v1's one task.
	for _, c := range []struct {
		b grains.Behavior[order.State]
		s order.State
	}{{after, old}, {withdrawn, old2}} {
		s, done := finish(t, c.b, c.s)
		if s.Status != order.StatusCompleted || s.PlanVersion != 1 || !reflect.DeepEqual(done, []string{s.ID + "/provision"}) {
			t.Fatalf("v1 order %s: status %s, version %d, completed %v", s.ID, s.Status, s.PlanVersion, done)
		}
		for _, it := range s.Items {
			if it.State != order.StatusCompleted {
				t.Fatalf("v1 order %s: item %s is %s", s.ID, it.ID, it.State)
			}
		}
	}
	s, done := finish(t, after, fresh)
	want := []string{"o-3/1/reserveInventory", "o-3/1/provision", "o-3/1/activateBilling", "o-3/notify"}
	if s.Status != order.StatusCompleted || !reflect.DeepEqual(done, want) {
		t.Fatalf("v2 order: status %s, completed %v, want %v", s.Status, done, want)
	}

	// A catalog without v1 refuses new v1 orders.
	cmd, _ := withdrawn.DecodeCommand("create", []byte(createFor("5", 1, "x")))
	if _, err := withdrawn.Decide(order.State{}, cmd, envFor("o-5")); grains.CodeOf(err) != grains.CodeValidation {
		t.Fatalf("create on a withdrawn version: %v", err)
	}
}

func TestNewBehaviorValidatesPlans(t *testing.T) {
	bad := plan.Builtin()
	bad.Default = 7
	if _, err := order.NewBehavior(bad); !errors.Is(err, plan.ErrUnknownVersion) {
		t.Fatalf("unknown default: %v", err)
	}
	cyclic := plan.Catalog{Default: 1, Plans: []plan.Plan{{Version: 1, Order: []plan.TaskSpec{{Type: "a", DependsOn: []string{"a"}}}}}}
	if _, err := order.NewBehavior(cyclic); !errors.Is(err, plan.ErrInvalidPlan) {
		t.Fatalf("cyclic plan: %v", err)
	}
}

func TestCreatePlanVersionErrors(t *testing.T) {
	tests := []struct {
		name, payload string
		code          grains.Code
		pointer       string
	}{
		{"unknown version", createFor("1", 9, "x"), grains.CodeValidation, "/planVersion"},
		{"negative version", strings.Replace(createFor("1", 0, "x"), `"h"`, `"h","planVersion":-1`, 1), grains.CodeValidation, "/planVersion"},
		{"repeated line id", strings.Replace(createFor("1", 2, "x", "y"), `"lineId":"2"`, `"lineId":"1"`, 1), grains.CodeValidation, "/lines/1/lineId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := order.DecodeCommand("create", []byte(tt.payload))
			if err == nil {
				_, err = order.Decide(order.State{}, cmd, envFor("o-1"))
			}
			var de *grains.Error
			if !errors.As(err, &de) || de.Code != tt.code || len(de.Violations) != 1 || de.Violations[0].Pointer != tt.pointer {
				t.Fatalf("err = %#v, want %s at %s", err, tt.code, tt.pointer)
			}
		})
	}
}

// TestOrderFromBeforePlansWereStored folds the events of an order created
// before OrderCreated carried its tasks: it still completes.
func TestOrderFromBeforePlansWereStored(t *testing.T) {
	var legacy []grains.Event
	for _, ev := range []struct{ name, payload string }{
		{order.EvCreated, `{"orderId":"o-1","quoteId":"q-1","status":"acknowledged","planVersion":1,"lines":[{"lineId":"1","offeringId":"x","quantity":1}]}`},
		{order.EvTaskRequested, `{"orderId":"o-1","quoteId":"q-1","status":"inProgress","taskId":"o-1/provision","taskType":"provision","attempt":1}`},
	} {
		e, err := order.DecodeEvent(ev.name, []byte(ev.payload))
		if err != nil {
			t.Fatal(err)
		}
		legacy = append(legacy, e)
	}
	s := order.Behavior.Fold(order.State{}, legacy)
	if len(s.Tasks) != 1 || s.Tasks[0].Status != order.TaskStatusPending {
		t.Fatalf("legacy tasks %+v", s.Tasks)
	}
	s, evs := run(t, order.Behavior, s, "o-1", "completeTask", `{"taskId":"o-1/provision"}`)
	if s.Status != order.StatusCompleted || len(evs) != 2 {
		t.Fatalf("legacy order: status %s after %d events", s.Status, len(evs))
	}
}

// TestTaskRequestedWireFields: a line task's request carries lineId and
// dependsOn on top of the fields every request has.
func TestTaskRequestedWireFields(t *testing.T) {
	s, _ := run(t, order.Behavior, order.State{}, "o-1", "create", createFor("1", 2, "dia-1g"))
	_, evs := run(t, order.Behavior, s, "o-1", "completeTask", `{"taskId":"o-1/1/reserveInventory"}`)
	b, _ := json.Marshal(evs[1])
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"orderId", "quoteId", "status", "taskId", "taskType", "attempt", "lines", "lineId", "dependsOn"} {
		if _, ok := m[k]; !ok {
			t.Errorf("FulfillmentTaskRequested lacks %s: %s", k, b)
		}
	}
	// check arms the stuck timer; the worker ignores it.
	if _, ok := m["check"]; !ok || len(m) != 10 || m["lineId"] != "1" {
		t.Errorf("FulfillmentTaskRequested = %s", b)
	}
}

// TestConcurrentDecideOnV2SharesNoState decides results for a v2 order from
// many goroutines on one shared state; -race catches aliasing between the
// shared state and the states the goroutines fold.
func TestConcurrentDecideOnV2SharesNoState(t *testing.T) {
	s, _ := run(t, order.Behavior, order.State{}, "o-1", "create", createFor("1", 2, "dia-1g", "sdwan-license"))
	before, _ := json.Marshal(s)
	payloads := []string{
		`{"taskId":"o-1/1/reserveInventory","result":{"r":1}}`,
		`{"taskId":"o-1/2/provision"}`,
		`{"taskId":"o-1/1/provision"}`, // not requested yet: refused
	}
	results := make([]string, 30)
	done := make(chan struct{})
	for i := range results {
		go func(i int) {
			defer func() { done <- struct{}{} }()
			cmd, _ := order.DecodeCommand("completeTask", []byte(payloads[i%len(payloads)]))
			evs, err := order.Decide(s, cmd, envFor("o-1"))
			if err != nil {
				results[i] = string(grains.CodeOf(err))
				return
			}
			b, _ := json.Marshal(order.Behavior.Fold(s, evs))
			results[i] = string(b)
		}(i)
	}
	for range results {
		<-done
	}
	if after, _ := json.Marshal(s); string(after) != string(before) {
		t.Fatalf("shared state changed:\n%s\n%s", before, after)
	}
	for i := range results {
		if results[i] != results[i%len(payloads)] {
			t.Fatalf("goroutine %d got %s, want %s", i, results[i], results[i%len(payloads)])
		}
	}
	if results[2] != string(grains.CodeInvalidTransition) || !strings.HasPrefix(results[0], "{") || !strings.HasPrefix(results[1], "{") {
		t.Fatalf("results %q", results[:3])
	}
}
