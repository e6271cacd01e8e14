package order_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

// TestReplayGivesTheSameMilestonesAndAlerts folds every event of an order's
// life again from nothing, as a new activation or a projection would: the
// milestones and alerts are derived from the events alone.
func TestReplayGivesTheSameMilestonesAndAlerts(t *testing.T) {
	var all []grains.Event
	s := order.State{}
	run := func(name, payload string, now time.Time, roles ...string) {
		t.Helper()
		e := env(roles...)
		e.Now = now
		evs, err := order.Decide(s, mustDecode(t, name, payload), e)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			back, err := order.DecodeEvent(ev.EventName(), b)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, back)
		}
		s = order.Behavior.Fold(s, evs)
	}
	run("create", validCreate, t0, "system")
	committed := *s.CommittedDate
	run("checkJeopardy", `{"jeopardyType":"critical","at":"`+committed.Format(time.RFC3339Nano)+`"}`, committed, "system")
	run("failTask", `{"taskId":"o-1/provision","reason":"r"}`, committed.Add(time.Minute), "system")
	run("skipTask", `{"taskId":"o-1/provision","reason":"r"}`, committed.Add(2*time.Minute), "ops")

	replayed := order.Behavior.Fold(order.State{}, all)
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(replayed)
	if string(a) != string(b) {
		t.Fatalf("replay differs:\nlive     %s\nreplayed %s", a, b)
	}
	if s.Status != order.StatusPartial || len(s.JeopardyAlerts) != 1 || len(s.Milestones) != 4 {
		t.Fatalf("status %s, alerts %+v, milestones %+v", s.Status, s.JeopardyAlerts, s.Milestones)
	}
}

// TestCreatedBeforeCommittedDatesSetsNoTimer: an OrderCreated from before
// committed dates (replayed, or relayed again) sets no jeopardy timer, and
// its order raises no alert.
func TestCreatedBeforeCommittedDatesSetsNoTimer(t *testing.T) {
	ev, err := order.DecodeEvent(order.EvCreated, []byte(`{"orderId":"o-1","quoteId":"q-1","status":"acknowledged","lines":[],"createdAt":"2025-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if set, cancel := ev.(grains.TimerEffects).Timers(); len(set)+len(cancel) != 0 {
		t.Fatalf("timers %v, cancel %v", set, cancel)
	}
	s := order.Apply(order.State{}, ev)
	s.Status = order.StatusInProgress
	evs, err := order.Decide(s, mustDecode(t, "checkJeopardy", `{"jeopardyType":"critical","at":"2025-01-02T00:00:00Z"}`), env("system"))
	if err != nil || len(evs) != 0 {
		t.Fatalf("checkJeopardy on an order without a committed date: %v %v", evs, err)
	}
	if s.CommittedDate != nil || len(s.Milestones) != 1 {
		t.Fatalf("state %+v", s)
	}
}

func TestTaskMilestoneNames(t *testing.T) {
	for typ, want := range map[string]string{"reserveInventory": "reserved", "provision": "provisioned",
		"activateBilling": "billingActivated", "notify": "notified", "deprovision": "deprovisioned", "survey": "surveyDone"} {
		if got := order.TaskMilestone(typ); got != want {
			t.Errorf("TaskMilestone(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestAmendedIsAMilestone(t *testing.T) {
	s := step(t, order.State{}, "create", validCreate, "system")
	at := t0.Add(time.Hour)
	s = order.Apply(s, order.Amended{OrderID: s.ID, QuoteID: s.QuoteID, Status: s.Status,
		Amendment: order.Amendment{Number: 1, Reason: "more seats", By: "carol", At: at}, Lines: s.Lines, Items: s.Items})
	last := s.Milestones[len(s.Milestones)-1]
	if last.Name != order.MilestoneAmended || !last.MilestoneDate.Equal(at) || last.Message != "amendment 1 by carol: more seats" || last.ID != "ms-2" {
		t.Fatalf("milestones %+v", s.Milestones)
	}
}
