package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/grainline/grainline/grains"
)

// TestTaskRecoveryPaths: the task in the path is URL-escaped, whole or
// relative to the order, and reaches the grain as the body's taskId.
func TestTaskRecoveryPaths(t *testing.T) {
	e := newEnv(t)
	e.g.Put("demo", grains.KindOrder, "o-1", map[string]any{"id": "o-1", "status": "held"})
	cases := []struct{ path, body, command, taskID string }{
		{"/v1/orders/o-1/tasks/o-1%2F3%2Fprovision/retry", `{"reason":"fixed"}`, "retryTask", "o-1/3/provision"},
		{"/v1/orders/o-1/tasks/3%2Fprovision/skip", `{"reason":"r"}`, "skipTask", "o-1/3/provision"},
		{"/v1/orders/o-1/tasks/provision/complete", `{"reason":"r","evidence":"ticket 1"}`, "completeTaskManually", "o-1/provision"},
		{"/v1/orders/o-1/tasks/3%2FreserveInventory/reconcile", `{"reason":"r","effect":"absent","evidence":"e","taskId":"o-1/3/reserveInventory"}`, "reconcileTask", "o-1/3/reserveInventory"},
	}
	for i, c := range cases {
		e.do("POST", c.path, c.body)
		sent := e.g.Sent()
		if len(sent) != i+1 {
			t.Fatalf("%s: %d commands sent, want %d", c.path, len(sent), i+1)
		}
		got := sent[i]
		var p map[string]any
		if err := json.Unmarshal(got.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if got.Kind != grains.KindOrder || got.ID != "o-1" || got.Name != c.command || p["taskId"] != c.taskID || p["reason"] == nil {
			t.Errorf("%s sent %s %s %s %v", c.path, got.Kind, got.ID, got.Name, p)
		}
	}
	// A body taskId that names another task is refused before any grain.
	expectProblem(t, e.do("POST", "/v1/orders/o-1/tasks/3%2Fprovision/retry", `{"reason":"r","taskId":"o-1/2/provision"}`), 400, grains.CodeBadRequest)
	if n := len(e.g.Sent()); n != len(cases) {
		t.Fatalf("a refused request reached a grain (%d sent)", n)
	}
}

func TestFalloutReadAndAssign(t *testing.T) {
	e := newEnv(t)
	e.g.Put("demo", grains.KindOrder, "o-2", map[string]any{"id": "o-2", "status": "held",
		"fallout": []any{map[string]any{"id": "fc-1", "taskId": "o-2/provision", "status": "open", "owner": "ops", "cause": "retries_exhausted"}}})
	m := expect(t, e.do("GET", "/v1/orders/o-2/fallout", ""), 200)
	items, _ := m["items"].([]any)
	if m["orderId"] != "o-2" || m["status"] != "held" || len(items) != 1 || items[0].(map[string]any)["owner"] != "ops" {
		t.Fatalf("fallout = %v", m)
	}
	e.g.Put("demo", grains.KindOrder, "o-3", map[string]any{"id": "o-3", "status": "inProgress"})
	m = expect(t, e.do("GET", "/v1/orders/o-3/fallout", ""), 200)
	if items, ok := m["items"].([]any); !ok || len(items) != 0 {
		t.Fatalf("no cases = %v, want items []", m)
	}
	expectProblem(t, e.do("GET", "/v1/orders/o-none/fallout", ""), 404, grains.CodeNotFound)

	e.do("POST", "/v1/orders/o-2/fallout/fc-1/assign", `{"owner":"olga"}`)
	sent := e.g.Sent()
	if len(sent) != 1 || sent[0].Name != "assignFallout" || string(sent[0].Payload) != `{"caseId":"fc-1","owner":"olga"}` {
		t.Fatalf("assign sent %+v", sent)
	}
	expectProblem(t, e.do("POST", "/v1/orders/o-2/fallout/fc-1/assign", `{"owner":"olga","caseId":"fc-2"}`), 400, grains.CodeBadRequest)
}

func TestCancelProductOrder(t *testing.T) {
	e := newEnv(t)
	e.g.Put("demo", grains.KindOrder, "o-4", map[string]any{"id": "o-4", "status": "open"})
	w := e.do("POST", "/v1/cancelProductOrder", `{"productOrderId":"o-4","reason":"customer withdrew"}`)
	m := expect(t, w, 201)
	if m["id"] != "co-o-4" || m["productOrderId"] != "o-4" || m["state"] != "done" || m["cancellationReason"] != "customer withdrew" ||
		m["orderStatus"] != "cancelled" || w.Header().Get("Location") != "/v1/cancelProductOrder/co-o-4" {
		t.Fatalf("cancel request = %v (%v)", m, w.Header())
	}
	if sent := e.g.Sent(); len(sent) != 1 || sent[0].Kind != grains.KindOrder || sent[0].ID != "o-4" || sent[0].Name != "cancel" {
		t.Fatalf("sent %+v", sent)
	}
	m = expect(t, e.do("GET", "/v1/cancelProductOrder/co-o-4", ""), 200)
	if m["id"] != "co-o-4" || m["state"] != "done" {
		t.Fatalf("GET cancel request = %v", m)
	}
	expectProblem(t, e.do("GET", "/v1/cancelProductOrder/o-4", ""), 404, grains.CodeNotFound)
	e.g.Put("demo", grains.KindOrder, "o-5", map[string]any{"id": "o-5", "status": "open"})
	expectProblem(t, e.do("GET", "/v1/cancelProductOrder/co-o-5", ""), 404, grains.CodeNotFound)
	expectProblem(t, e.do("POST", "/v1/cancelProductOrder", `{"reason":"x"}`), 422, grains.CodeValidation)
	expectProblem(t, e.do("POST", "/v1/cancelProductOrder", `{"productOrderId":"o-4","reason":"x","extra":1}`), 400, grains.CodeBadRequest)
	// The order cannot be cancelled twice: the grain's problem comes back.
	expectProblem(t, e.do("POST", "/v1/cancelProductOrder", `{"productOrderId":"o-4","reason":"again"}`), 409, grains.CodeInvalidTransition)
}

// TestAmendRoute: POST /v1/orders/{id}/amend sends amend with the body as
// its payload, the Idempotency-Key and the If-Match revision.
func TestAmendRoute(t *testing.T) {
	e := newEnv(t)
	e.g.Put("demo", grains.KindOrder, "o-6", map[string]any{"id": "o-6", "status": "inProgress"})
	body := `{"reason":"more","lines":[{"lineId":"1","offeringId":"dia-1g","quantity":2}]}`
	e.do("POST", "/v1/orders/o-6/amend", body, "Idempotency-Key: k-amend-1", `If-Match: "1"`)
	sent := e.g.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d commands sent, want 1", len(sent))
	}
	got := sent[0]
	if got.Kind != grains.KindOrder || got.ID != "o-6" || got.Name != "amend" || got.IdempotencyKey != "api:k-amend-1" || got.IfMatch != 1 {
		t.Fatalf("sent %s %s %s key=%q ifMatch=%d", got.Kind, got.ID, got.Name, got.IdempotencyKey, got.IfMatch)
	}
	var p map[string]any
	if err := json.Unmarshal(got.Payload, &p); err != nil || p["reason"] != "more" || len(p["lines"].([]any)) != 1 {
		t.Fatalf("payload %s (%v)", got.Payload, err)
	}
}

func TestOrderMilestones(t *testing.T) {
	e := newEnv(t)
	e.g.Put("demo", grains.KindOrder, "o-5", map[string]any{"id": "o-5", "status": "inProgress", "committedDate": "2026-01-05T12:00:00Z",
		"milestones":     []any{map[string]any{"id": "ms-1", "name": "acknowledged", "status": "reached", "milestoneDate": "2026-01-05T09:00:00Z"}},
		"jeopardyAlerts": []any{map[string]any{"id": "ja-1", "name": "committedDateAtRisk", "jeopardyType": "hazard", "alertDate": "2026-01-05T11:00:00Z"}}})
	m := expect(t, e.do("GET", "/v1/orders/o-5/milestones", ""), 200)
	items, _ := m["items"].([]any)
	alerts, _ := m["jeopardyAlerts"].([]any)
	if m["orderId"] != "o-5" || m["status"] != "inProgress" || m["committedDate"] != "2026-01-05T12:00:00Z" || len(items) != 1 || len(alerts) != 1 ||
		items[0].(map[string]any)["name"] != "acknowledged" || alerts[0].(map[string]any)["jeopardyType"] != "hazard" {
		t.Fatalf("milestones = %v", m)
	}
	// An order from before milestones: empty lists, no committed date.
	e.g.Put("demo", grains.KindOrder, "o-6", map[string]any{"id": "o-6", "status": "completed"})
	m = expect(t, e.do("GET", "/v1/orders/o-6/milestones", ""), 200)
	if items, ok := m["items"].([]any); !ok || len(items) != 0 {
		t.Fatalf("no milestones = %v, want items []", m)
	}
	if alerts, ok := m["jeopardyAlerts"].([]any); !ok || len(alerts) != 0 || m["committedDate"] != nil {
		t.Fatalf("no alerts = %v", m)
	}
	expectProblem(t, e.do("GET", "/v1/orders/o-none/milestones", ""), 404, grains.CodeNotFound)
}
