package order_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func env(roles ...string) grains.Env {
	return grains.Env{Tenant: "demo", ID: "o-1", Actor: "tester", Roles: roles, Now: t0}
}

func mustDecode(t *testing.T, name, payload string) grains.Command {
	t.Helper()
	c, err := order.DecodeCommand(name, []byte(payload))
	if err != nil {
		t.Fatalf("decode %s %s: %v", name, payload, err)
	}
	return c
}

// step runs cmd and folds its events; it fails the test on an error.
func step(t *testing.T, s order.State, name, payload string, roles ...string) order.State {
	t.Helper()
	evs, err := order.Decide(s, mustDecode(t, name, payload), env(roles...))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return order.Behavior.Fold(s, evs)
}

// states returns one order in every status.
func states(t *testing.T) map[string]order.State {
	created := step(t, order.State{}, "create", validCreate, "system")
	c, _ := order.DecodeCommand("create", []byte(validCreate))
	evs, err := order.Decide(order.State{}, c, env("system"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]order.State{
		"none":         {},
		"acknowledged": order.Apply(order.State{}, evs[0]),
		"inProgress":   created,
		"completed":    step(t, created, "completeTask", `{"taskId":"o-1/provision"}`, "system"),
		"held":         step(t, created, "failTask", `{"taskId":"o-1/provision","reason":"r"}`, "system"),
		"cancelled":    step(t, created, "cancel", `{"reason":"r"}`, "ops"),
	}
}

// TestTransitionMatrix runs every command, with a role allowed to send it,
// against an order in every status. "ok" means events, "noop" no events and
// no error, anything else the error code.
func TestTransitionMatrix(t *testing.T) {
	// Quote "1" also maps to order o-1: a different quote claiming this order.
	otherQuote := strings.NewReplacer(`"q-1"`, `"1"`).Replace(validCreate)
	cmds := []struct{ key, name, payload, role string }{
		{"create", "create", validCreate, "system"},
		{"createOther", "create", otherQuote, "system"},
		{"completeTask", "completeTask", `{"taskId":"o-1/provision"}`, "system"},
		{"failTask", "failTask", `{"taskId":"o-1/provision","reason":"r"}`, "system"},
		{"cancel", "cancel", `{"reason":"r"}`, "sales"},
		{"amend", "amend", `{"reason":"r","lines":[{"lineId":"1","offeringId":"x","quantity":2}]}`, "sales"},
		{"amendSame", "amend", `{"reason":"r","lines":[{"lineId":"1","offeringId":"x","quantity":1}]}`, "ops"},
	}
	want := map[string]map[string]string{
		"none":         {"create": "ok", "createOther": "ok", "completeTask": "not_found", "failTask": "not_found", "cancel": "not_found", "amend": "not_found", "amendSame": "not_found"},
		"acknowledged": {"create": "noop", "createOther": "already_exists", "completeTask": "invalid_transition", "failTask": "invalid_transition", "cancel": "ok", "amend": "ok", "amendSame": "noop"},
		"inProgress":   {"create": "noop", "createOther": "already_exists", "completeTask": "ok", "failTask": "ok", "cancel": "ok", "amend": "point_of_no_return", "amendSame": "noop"},
		"completed":    {"create": "noop", "createOther": "already_exists", "completeTask": "noop", "failTask": "invalid_transition", "cancel": "invalid_transition", "amend": "invalid_transition", "amendSame": "invalid_transition"},
		"held":         {"create": "noop", "createOther": "already_exists", "completeTask": "invalid_transition", "failTask": "noop", "cancel": "ok", "amend": "point_of_no_return", "amendSame": "noop"},
		"cancelled":    {"create": "noop", "createOther": "already_exists", "completeTask": "invalid_transition", "failTask": "invalid_transition", "cancel": "invalid_transition", "amend": "invalid_transition", "amendSame": "invalid_transition"},
	}
	all := states(t)
	for stName, s := range all {
		for _, c := range cmds {
			evs, err := order.Decide(s, mustDecode(t, c.name, c.payload), env(c.role))
			got := "ok"
			switch {
			case err != nil:
				got = string(grains.CodeOf(err))
			case len(evs) == 0:
				got = "noop"
			}
			if w := want[stName][c.key]; got != w {
				t.Errorf("%s × %s = %s (%v), want %s", stName, c.key, got, err, w)
			}
			if got == "invalid_transition" && !strings.Contains(err.Error(), string(s.Status)) {
				t.Errorf("%s × %s: message %q does not name the state", stName, c.key, err)
			}
		}
	}
}

// TestRolesAreChecked sends every command with every role that must not
// send it.
func TestRolesAreChecked(t *testing.T) {
	s := states(t)["inProgress"]
	cases := []struct{ name, payload string }{
		{"create", validCreate},
		{"completeTask", `{"taskId":"o-1/provision"}`},
		{"failTask", `{"taskId":"o-1/provision","reason":"r"}`},
		{"cancel", `{"reason":"r"}`},
		{"retryTask", `{"taskId":"o-1/provision","reason":"r"}`},
		{"completeTaskManually", `{"taskId":"o-1/provision","reason":"r","evidence":"e"}`},
		{"skipTask", `{"taskId":"o-1/provision","reason":"r"}`},
		{"reconcileTask", `{"taskId":"o-1/provision","reason":"r","effect":"absent","evidence":"e"}`},
		{"assignFallout", `{"caseId":"fc-1","owner":"olga"}`},
		{"awaitTask", `{"taskId":"o-1/provision","awaiting":"callback"}`},
		{"checkProgress", `{"progress":1}`},
		{"amend", `{"reason":"r","lines":[{"lineId":"1","offeringId":"x","quantity":2}]}`},
		{"checkJeopardy", `{"jeopardyType":"hazard","at":"2026-01-05T09:00:00Z"}`},
	}
	allowed := map[string][]string{"create": {"system"}, "completeTask": {"system"}, "failTask": {"system"}, "cancel": {"sales", "ops"},
		"retryTask": {"ops"}, "completeTaskManually": {"ops"}, "skipTask": {"ops"}, "reconcileTask": {"ops"}, "assignFallout": {"ops"},
		"awaitTask": {"system"}, "checkProgress": {"system"}, "amend": {"sales", "ops"}, "checkJeopardy": {"system"}}
	for _, c := range cases {
		for _, role := range []string{"", "sales", "ops", "approver", "system", "admin"} {
			ok := false
			for _, a := range allowed[c.name] {
				ok = ok || a == role
			}
			if ok {
				continue
			}
			var roles []string
			if role != "" {
				roles = []string{role}
			}
			for _, st := range []order.State{s, {}} {
				_, err := order.Decide(st, mustDecode(t, c.name, c.payload), env(roles...))
				if grains.CodeOf(err) != grains.CodeForbidden {
					t.Errorf("%s with role %q (exists=%v): %v, want forbidden", c.name, role, order.Exists(st), err)
				}
			}
		}
	}
}

// TestConcurrentDecideSharesNoState runs Decide and Apply on one shared state
// from many goroutines; with -race this catches any aliasing between states.
func TestConcurrentDecideSharesNoState(t *testing.T) {
	s := states(t)["inProgress"]
	before, _ := json.Marshal(s)
	cmds := []grains.Command{
		mustDecode(t, "completeTask", `{"taskId":"o-1/provision","result":{"x":1}}`),
		mustDecode(t, "failTask", `{"taskId":"o-1/provision","reason":"r"}`),
		mustDecode(t, "cancel", `{"reason":"r"}`),
	}
	var wg sync.WaitGroup
	results := make([]string, 30)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			evs, err := order.Decide(s, cmds[i%len(cmds)], env("system", "ops"))
			if err != nil {
				results[i] = err.Error()
				return
			}
			next := order.Behavior.Fold(s, evs)
			b, _ := json.Marshal(next)
			results[i] = string(b)
		}(i)
	}
	wg.Wait()
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Fatalf("shared state changed:\n%s\n%s", before, after)
	}
	for i := range results {
		if results[i] != results[i%len(cmds)] {
			t.Fatalf("goroutine %d got %s, want %s", i, results[i], results[i%len(cmds)])
		}
		if !strings.HasPrefix(results[i], "{") {
			t.Fatalf("goroutine %d failed: %s", i, results[i])
		}
	}
}
