package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/grains"
)

// Attempts reads the fulfillment worker's attempt records of a task (a
// truth.AttemptStore is one). It must be safe for concurrent use.
type Attempts interface {
	Attempts(ctx context.Context, tenant, taskID string) ([]truth.Attempt, error)
}

// TaskView is one order task with the attempts the worker recorded for it.
type TaskView struct {
	TaskID    string          `json:"taskId"`
	Type      string          `json:"type"`
	LineID    string          `json:"lineId,omitempty"`
	Status    string          `json:"status"`
	Attempt   int             `json:"attempt"`
	Reason    string          `json:"reason,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Attempts  []AttemptView   `json:"attempts"`
	DependsOn []string        `json:"dependsOn,omitempty"`
	// Compensates is set on a compensation task: the task it undoes.
	Compensates string `json:"compensates,omitempty"`
	// SupersededBy is the number of the amendment that retired the task.
	SupersededBy int `json:"supersededBy,omitempty"`
	// Awaiting, CallbackChecks and CallbackDue show a task whose result
	// comes by callback (order.Task).
	Awaiting       string     `json:"awaiting,omitempty"`
	CallbackChecks int        `json:"callbackChecks,omitempty"`
	CallbackDue    *time.Time `json:"callbackDue,omitempty"`
}

// AttemptView is one attempt record as the API shows it.
type AttemptView struct {
	N           int        `json:"n"`
	System      string     `json:"system"`
	Operation   string     `json:"operation"`
	ExternalKey string     `json:"externalKey"`
	Outcome     string     `json:"outcome"`
	Detail      string     `json:"detail,omitempty"`
	StartedAt   time.Time  `json:"startedAt"`
	EndedAt     *time.Time `json:"endedAt,omitempty"`
}

// OrderTasks answers {"orderId", "items": [TaskView...]}: the order's tasks
// in plan order, each with its attempt records. Without Deps.Attempts the
// tasks carry no attempts.
func (d *Dispatcher) OrderTasks(ctx context.Context, p auth.Principal, orderID, instance string) Reply {
	if err := ValidID(orderID); err != nil {
		return Fail(err, instance)
	}
	res, err := d.deps.Reader.Get(ctx, p.Tenant, grains.KindOrder, orderID)
	if err != nil {
		return Fail(err, instance)
	}
	var st struct {
		Tasks []TaskView `json:"tasks"`
	}
	if err := json.Unmarshal(res.State, &st); err != nil {
		return Fail(err, instance)
	}
	items := make([]TaskView, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		t.Attempts = []AttemptView{}
		if string(t.Result) == "null" {
			t.Result = nil
		}
		if d.deps.Attempts != nil {
			as, err := d.deps.Attempts.Attempts(ctx, string(p.Tenant), t.TaskID)
			if err != nil {
				return Fail(grains.Errorf(grains.CodeUnavailable, "attempt records: %v", err), instance)
			}
			for _, a := range as {
				v := AttemptView{N: a.N, System: a.System, Operation: a.Operation, ExternalKey: a.ExternalKey,
					Outcome: string(a.Outcome), Detail: a.Detail, StartedAt: a.StartedAt}
				if !a.EndedAt.IsZero() {
					end := a.EndedAt
					v.EndedAt = &end
				}
				t.Attempts = append(t.Attempts, v)
			}
		}
		items = append(items, t)
	}
	body, err := json.Marshal(struct {
		OrderID string     `json:"orderId"`
		Items   []TaskView `json:"items"`
	}{orderID, items})
	if err != nil {
		return Fail(err, instance)
	}
	return ok(http.StatusOK, body, orderID, res.Revision)
}
