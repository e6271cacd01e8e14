package order_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

// timerEffects runs cmd on s and returns the events and their timer
// effects, in event order.
func timerEffects(t *testing.T, s order.State, name, payload string, now time.Time) (order.State, []grains.Timer, []string) {
	t.Helper()
	e := grains.Env{Tenant: "demo", ID: "o-1", Actor: "tester", Roles: []string{order.RoleSystem}, Now: now}
	evs, err := order.Decide(s, mustDecode(t, name, payload), e)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var set []grains.Timer
	var cancel []string
	for _, ev := range evs {
		if te, ok := ev.(grains.TimerEffects); ok {
			s, c := te.Timers()
			set, cancel = append(set, s...), append(cancel, c...)
		}
	}
	return order.Behavior.Fold(s, evs), set, cancel
}

// TestCallbackTimer: awaiting a callback arms the task's callback timer with
// the checkCallback command; completing the task cancels it; a task that
// never awaited cancels nothing.
func TestCallbackTimer(t *testing.T) {
	create := `{"quoteId":"q-1","orderId":"o-1","customerId":"c","currency":"EUR","lines":[{"lineId":"1","offeringId":"sdwan-license","quantity":1}],` +
		`"oneTimeTotal":"0","monthlyTotal":"1","priceHash":"h","planVersion":2,"callbackTimeoutSeconds":30}`
	s, _, _ := timerEffects(t, order.State{}, order.CmdCreate, create, t0)
	s, _, cancel := timerEffects(t, s, order.CmdCompleteTask, `{"taskId":"o-1/1/provision"}`, t0)
	if len(cancel) != 0 {
		t.Fatalf("completing a task that never awaited cancels %v", cancel)
	}
	billing := "o-1/1/activateBilling"
	s, set, _ := timerEffects(t, s, order.CmdAwaitTask, `{"taskId":"`+billing+`","awaiting":"callback"}`, t0)
	if len(set) != 1 || set[0].ID != order.CallbackTimerID(billing) || set[0].Command != order.CmdCheckCallback ||
		!set[0].At.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("awaitTask set %+v", set)
	}
	var payload order.CheckCallback
	if err := json.Unmarshal(set[0].Payload, &payload); err != nil ||
		payload != (order.CheckCallback{TaskID: billing, Attempt: 1, Round: 1}) {
		t.Fatalf("timer payload %s (%v)", set[0].Payload, err)
	}
	// The payload is a valid command.
	mustDecode(t, set[0].Command, string(set[0].Payload))
	_, _, cancel = timerEffects(t, s, order.CmdCompleteTask, `{"taskId":"`+billing+`"}`, t0.Add(time.Second))
	if len(cancel) != 1 || cancel[0] != order.CallbackTimerID(billing) {
		t.Fatalf("completing an awaiting task cancels %v, want its callback timer", cancel)
	}
}
