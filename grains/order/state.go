// Package order is the order grain (TMF622 vocabulary): an order created from
// an accepted quote, which runs its own fulfillment as a process manager. At
// creation it pins a decomposition plan (version 1: one "provision" task),
// requests the plan's tasks, and moves to completed when every task is done or
// to failed when one fails.
//
// State machine:
//
//	(none) --create--> acknowledged --(same commit)--> inProgress
//	inProgress --completeTask (last)--> completed
//	inProgress --failTask--> failed
//	acknowledged|inProgress --cancel--> cancelled
package order

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
)

// Status is the order's lifecycle state.
type Status string

// Order statuses.
const (
	StatusAcknowledged Status = "acknowledged"
	StatusInProgress   Status = "inProgress"
	StatusCompleted    Status = "completed"
	StatusFailed       Status = "failed"
	StatusCancelled    Status = "cancelled"
)

// TaskStatus is the state of one fulfillment task.
type TaskStatus string

// Task statuses.
const (
	TaskStatusPending TaskStatus = "pending"
	TaskStatusDone    TaskStatus = "done"
	TaskStatusFailed  TaskStatus = "failed"
)

// PlanVersion is the decomposition plan new orders pin.
const PlanVersion = 1

// TaskTypeProvision is the one task type of plan version 1.
const TaskTypeProvision = "provision"

// Roles the order grain checks.
const (
	RoleSystem = "system"
	RoleSales  = "sales"
	RoleOps    = "ops"
)

// IDForQuote derives the id of the one order an accepted quote becomes:
// "q-XYZ" becomes "o-XYZ", any other id gets an "o-" prefix. Deterministic,
// so that accepting or delivering QuoteAccepted twice addresses one order.
func IDForQuote(quoteID string) string {
	if rest, ok := strings.CutPrefix(quoteID, "q-"); ok {
		return "o-" + rest
	}
	return "o-" + quoteID
}

// TaskID names the task of type taskType in order orderID.
func TaskID(orderID, taskType string) string { return orderID + "/" + taskType }

// Task is one fulfillment task of the order's plan.
type Task struct {
	TaskID  string          `json:"taskId"`
	Type    string          `json:"type"`
	Status  TaskStatus      `json:"status"`
	Attempt int             `json:"attempt"`
	Result  json.RawMessage `json:"result"` // the worker's result once done
	Reason  string          `json:"reason"` // why it failed
}

// State is the order's snapshot. The zero State is an order that does not
// exist yet.
type State struct {
	ID            string          `json:"id"`
	Tenant        grains.TenantID `json:"tenant"`
	QuoteID       string          `json:"quoteId"`
	Status        Status          `json:"status"`
	CustomerID    string          `json:"customerId"`
	CustomerName  string          `json:"customerName"`
	Currency      string          `json:"currency"`
	Lines         []grains.Line   `json:"lines"`
	OneTimeTotal  string          `json:"oneTimeTotal"`
	MonthlyTotal  string          `json:"monthlyTotal"`
	PriceHash     string          `json:"priceHash"`
	PlanVersion   int             `json:"planVersion"`
	Tasks         []Task          `json:"tasks"`
	AcceptedBy    string          `json:"acceptedBy"`
	AcceptedAt    *time.Time      `json:"acceptedAt"`
	CreatedAt     time.Time       `json:"createdAt"`
	CompletedAt   *time.Time      `json:"completedAt"`
	FailureReason string          `json:"failureReason"`
	FailedAt      *time.Time      `json:"failedAt"`
	CancelReason  string          `json:"cancelReason"`
	CancelledBy   string          `json:"cancelledBy"`
	CancelledAt   *time.Time      `json:"cancelledAt"`
}

// Exists reports whether s holds a created order.
func Exists(s State) bool { return s.ID != "" }

// task returns the index of the task with id, or -1.
func (s State) task(id string) int {
	for i, t := range s.Tasks {
		if t.TaskID == id {
			return i
		}
	}
	return -1
}

func cloneTasks(ts []Task) []Task {
	if ts == nil {
		return nil
	}
	out := make([]Task, len(ts))
	copy(out, ts)
	return out
}
