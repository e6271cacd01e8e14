package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
)

type fakeAttempts struct {
	byTask map[string][]truth.Attempt
	err    error
}

func (f fakeAttempts) Attempts(_ context.Context, tenant, taskID string) ([]truth.Attempt, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []truth.Attempt
	for _, a := range f.byTask[taskID] {
		if a.Tenant == tenant {
			out = append(out, a)
		}
	}
	return out, nil
}

func TestOrderTasks(t *testing.T) {
	g := fakegrains.New()
	g.Put("acme", grains.KindOrder, "o-1", map[string]any{"id": "o-1", "status": "inProgress", "tasks": []any{
		map[string]any{"taskId": "o-1/1/reserveInventory", "type": "reserveInventory", "lineId": "1", "status": "done",
			"attempt": 1, "result": map[string]any{"externalRef": "inventory-1"}, "reason": ""},
		map[string]any{"taskId": "o-1/notify", "type": "notify", "status": "waiting", "attempt": 0, "result": nil,
			"dependsOn": []string{"o-1/1/reserveInventory"}},
	}})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := fakeAttempts{byTask: map[string][]truth.Attempt{"o-1/1/reserveInventory": {
		{Tenant: "acme", TaskID: "o-1/1/reserveInventory", N: 1, System: "inventory", Operation: "reserve",
			ExternalKey: "k", Outcome: truth.OutcomeStarted, StartedAt: t0},
		{Tenant: "acme", TaskID: "o-1/1/reserveInventory", N: 2, System: "inventory", Operation: "query",
			ExternalKey: "k", Outcome: truth.OutcomeSucceeded, Detail: "found inventory-1", StartedAt: t0, EndedAt: t0.Add(time.Second)},
		{Tenant: "other", TaskID: "o-1/1/reserveInventory", N: 1, System: "inventory", Operation: "reserve",
			ExternalKey: "k", Outcome: truth.OutcomeSucceeded, StartedAt: t0, EndedAt: t0},
	}}}
	d, err := New(Deps{Sender: g, Reader: g, Attempts: recs})
	if err != nil {
		t.Fatal(err)
	}
	p := auth.Principal{Tenant: "acme", Subject: "user:ann"}
	rep := d.OrderTasks(context.Background(), p, "o-1", "/v1/orders/o-1/tasks")
	if rep.Status != http.StatusOK {
		t.Fatalf("status %d: %s", rep.Status, rep.Body)
	}
	var got struct {
		OrderID string     `json:"orderId"`
		Items   []TaskView `json:"items"`
	}
	if err := json.Unmarshal(rep.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.OrderID != "o-1" || len(got.Items) != 2 {
		t.Fatalf("body %s", rep.Body)
	}
	a := got.Items[0]
	if a.TaskID != "o-1/1/reserveInventory" || a.LineID != "1" || a.Status != "done" || len(a.Attempts) != 2 ||
		a.Attempts[0].Outcome != "started" || a.Attempts[0].EndedAt != nil ||
		a.Attempts[1].Operation != "query" || a.Attempts[1].EndedAt == nil || !a.Attempts[1].EndedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("first task %+v", a)
	}
	if n := got.Items[1]; n.Attempts == nil || len(n.Attempts) != 0 || n.Result != nil || len(n.DependsOn) != 1 {
		t.Errorf("second task %+v (attempts must be [], not null)", n)
	}

	if rep := d.OrderTasks(context.Background(), p, "o-404", "/x"); rep.Code != grains.CodeNotFound {
		t.Errorf("unknown order: %d %s", rep.Status, rep.Code)
	}
	if rep := d.OrderTasks(context.Background(), auth.Principal{Tenant: "other"}, "o-1", "/x"); rep.Code != grains.CodeNotFound {
		t.Errorf("another tenant's order: %d %s", rep.Status, rep.Code)
	}
	if rep := d.OrderTasks(context.Background(), p, "bad id!", "/x"); rep.Status != http.StatusBadRequest {
		t.Errorf("bad id: %d", rep.Status)
	}
	down, _ := New(Deps{Sender: g, Reader: g, Attempts: fakeAttempts{err: errors.New("db down")}})
	if rep := down.OrderTasks(context.Background(), p, "o-1", "/x"); rep.Code != grains.CodeUnavailable {
		t.Errorf("records down: %d %s", rep.Status, rep.Code)
	}
}
