// Package order is the order grain (TMF622 vocabulary): an order created from
// an accepted quote, which runs its own fulfillment as a process manager.
//
// At creation the order pins a decomposition plan version (grains/plan; the
// create command may name one, else the catalog's default) and stores the
// plan's tasks in its OrderCreated event, so that it finishes on that version
// whatever the default becomes later. Each quote line becomes one item with
// action "add". A task is requested (FulfillmentTaskRequested) only once every
// task it depends on is done; completing a task requests the dependents it
// releases.
//
// State machine:
//
//	(none) --create--> acknowledged --(same commit)--> inProgress
//	inProgress --completeTask (last task)--> completed
//	inProgress --completeTask|failTask (nothing left running, a task failed)--> failed | partial
//	acknowledged|inProgress --cancel--> cancelled
//
// A task is waiting (dependencies not done; never requested), pending
// (requested), done or failed. A failed task's dependents are never
// requested; the other lines carry on.
//
// Item states roll up from tasks. An item's tasks are its line's tasks, or,
// when the plan has none for its line (plan version 1), the order tasks:
//
//	failed      one of its tasks failed
//	completed   all of its tasks are done
//	inProgress  one of its tasks is requested or done
//	acknowledged otherwise
//	cancelled   the order was cancelled before the item finished
//
// The order state rolls up from the items and the order tasks:
//
//	acknowledged  no task requested yet
//	inProgress    a task is requested and not finished
//	completed     every task is done
//	failed        nothing is left running, a task failed, no item completed
//	partial       nothing is left running, a task failed, some item completed
//	cancelled     cancelled before it finished
//
// Of the TMF622 states, pending, held, assessingCancellation and
// pendingCancellation are declared but not yet reachable by any command.
package order

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// Status is the order's lifecycle state.
type Status string

// Order statuses.
const (
	StatusAcknowledged          Status = "acknowledged"
	StatusInProgress            Status = "inProgress"
	StatusPending               Status = "pending"
	StatusHeld                  Status = "held"
	StatusPartial               Status = "partial"
	StatusCompleted             Status = "completed"
	StatusFailed                Status = "failed"
	StatusCancelled             Status = "cancelled"
	StatusAssessingCancellation Status = "assessingCancellation"
	StatusPendingCancellation   Status = "pendingCancellation"
)

// Action is what an order item does to the customer's inventory (TMF622).
type Action string

// Item actions. Orders created from a quote only add.
const (
	ActionAdd      Action = "add"
	ActionModify   Action = "modify"
	ActionDelete   Action = "delete"
	ActionNoChange Action = "noChange"
)

// Item is one order item (TMF622 productOrderItem): one quote line. Its
// state uses the order's state vocabulary and rolls up from its tasks.
type Item struct {
	ID         string `json:"id"` // the quote line id
	Action     Action `json:"action"`
	State      Status `json:"state"`
	OfferingID string `json:"offeringId"`
	Quantity   int    `json:"quantity"`
}

// TaskStatus is the state of one fulfillment task.
type TaskStatus string

// Task statuses.
const (
	TaskStatusWaiting TaskStatus = "waiting" // dependencies not done, not requested
	TaskStatusPending TaskStatus = "pending" // requested from a worker
	TaskStatusDone    TaskStatus = "done"
	TaskStatusFailed  TaskStatus = "failed"
)

// PlanVersion is the decomposition plan version new orders pin when their
// create command names none.
const PlanVersion = plan.DefaultVersion

// TaskTypeProvision is the one task type of plan version 1.
const TaskTypeProvision = plan.TypeProvision

// ViolationDependenciesPending is the violation code (at /taskId, with error
// code invalid_transition) of a result for a task whose dependencies are not
// done: the task was never requested.
const ViolationDependenciesPending = "dependencies_pending"

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

// TaskID names the order task of type taskType in order orderID (a line
// task's id is plan.LineTaskID).
func TaskID(orderID, taskType string) string { return plan.OrderTaskID(orderID, taskType) }

// Task is one fulfillment task of the order's plan.
type Task struct {
	TaskID    string   `json:"taskId"`
	Type      string   `json:"type"`
	LineID    string   `json:"lineId,omitempty"`    // "" for an order task
	DependsOn []string `json:"dependsOn,omitempty"` // task ids
	// PointOfNoReturn and Compensation come from the plan (see plan.TaskSpec).
	PointOfNoReturn bool            `json:"pointOfNoReturn,omitempty"`
	Compensation    string          `json:"compensation,omitempty"`
	Status          TaskStatus      `json:"status"`
	Attempt         int             `json:"attempt"`
	Result          json.RawMessage `json:"result"` // the worker's result once done
	Reason          string          `json:"reason"` // why it failed
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
	Items         []Item          `json:"items"`
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

func cloneItems(is []Item) []Item {
	if is == nil {
		return nil
	}
	out := make([]Item, len(is))
	copy(out, is)
	return out
}

func cloneTasks(ts []Task) []Task {
	if ts == nil {
		return nil
	}
	out := make([]Task, len(ts))
	copy(out, ts)
	return out
}
