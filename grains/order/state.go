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
//	inProgress --completeTask|skipTask (last task)--> completed | partial (an item had tasks skipped)
//	acknowledged|inProgress|held --checkJeopardy (timer; not finished)--> unchanged, with a jeopardy alert
//	inProgress --failTask | checkProgress (stuck)--> held       (a fallout case opens)
//	held --retryTask|completeTaskManually|skipTask|completeTask (last active case resolved)--> inProgress
//	acknowledged|inProgress|held --cancel--> assessingCancellation   (or 409 point_of_no_return, unchanged)
//	assessingCancellation --(no compensable task in flight)--> pendingCancellation | cancelled
//	pendingCancellation --completeTask (last compensation)--> cancelled
//	acknowledged|inProgress|held --amend--> the same status, lines re-planned  (or 409 point_of_no_return, unchanged)
//
// A task is waiting (dependencies not done; never requested), pending
// (requested), done, failed, skipped (by ops; its dependents proceed as if
// it were done) or superseded (retired by an amendment before it was
// requested). A failed task's dependents are not requested until ops
// recovers it; the other lines carry on.
//
// Fallout (ADR 0015): a task that fails for good (failTask, cause
// retries_exhausted, business_rejection or unknown_outcome) or makes no
// progress within the task SLO (the "stuck" timer: worker_silent,
// awaiting_callback, retries_exhausted) opens a fallout case in the order
// state, owned by the "ops" queue: open --assignFallout--> assigned -->
// resolved (by a recovery of its task, or the worker's late result) or
// cancelled (with the order). The order is held while any case is open or
// assigned; tasks of other lines keep running. An order whose task fails no
// longer ends failed: that status remains only on orders that failed
// before fallout cases existed.
//
// Committed date and jeopardy (ADR 0024, jeopardy.go): create fixes
// committedDate (requestedCompletionDate, else acceptedAt plus the plan's
// lead time) and jeopardyAt (the jeopardy margin before it); OrderCreated
// sets the "jeopardy" and "overdue" timers, whose checkJeopardy raises a
// hazard, then a critical, jeopardy alert (OrderJeopardyRaised) on an order
// that has not finished and is not being cancelled, each once; a stale
// firing (another date) does nothing. Completed, Failed and Cancelled
// cancel the timers. Milestones (milestones.go) are recorded by Apply from
// the events, never decided.
//
// Manual recovery (role ops, a reason, audited with it): retryTask (a new
// attempt), completeTaskManually (with evidence), skipTask, reconcileTask
// (effect present: complete; absent: the outcome becomes a known failure).
// Refused as unsafe: completing or skipping a billing task whose outcome is
// unknown (billing_outcome_unknown); retrying a reservation whose outcome is
// unknown (reconcile_first). A requested task's outcome counts as unknown.
//
// Callbacks (ADR 0022, callback.go): a task whose external system accepted
// it and reports by callback awaits its callback (awaitTask); the order arms
// a durable per-task callback timer (callbackTimeoutSeconds) and, when it
// fires first, asks the worker to query the system (checkCallback ->
// FulfillmentTaskQueryRequested), at most MaxCallbackChecks times per
// attempt; then the stuck timer opens an awaiting_callback case.
//
// Cancellation (TMF622 CancelProductOrder, one per order, id CancelID): the
// cancel is refused with point_of_no_return while a point-of-no-return task
// is done or requested. Else the order waits (assessingCancellation) for the
// requested tasks that declare a compensation, then requests the
// compensations of the done tasks (and of failed ones whose outcome is
// unknown) one at a time, latest done first, as tasks of type = the
// compensation's name (pendingCancellation), and is cancelled when none is
// left. A failed compensation opens a fallout case. A stuck task the
// cancel waits for keeps its fallout case through the cancel, and
// reconcileTask is the one recovery allowed on it (absent: nothing to undo;
// present: done, then undone). Nothing is deleted.
//
// Amendment (ADR 0023, amend.go): amend carries the full desired set of
// lines; the item diff against the current lines (add, modify, delete,
// noChange) becomes each item's action, and only the changed lines' tasks
// are re-planned: retired (Task.SupersededBy), undone by their
// compensations in reverse order of completion, and, for a modified line,
// redone as a new generation of tasks with ids of their own. A changed line
// whose task past its point of no return may have taken effect refuses the
// whole amend with point_of_no_return. Amended lines are not repriced.
//
// Item states roll up from tasks (compensations and retired tasks
// excepted; an item whose retired tasks are being undone is inProgress, a
// deleted one completed once undone). An item's tasks
// are its line's tasks, or, when the plan has none for its line (plan
// version 1), the order tasks:
//
//	failed      one of its tasks failed
//	partial     all of its tasks are done or skipped, at least one skipped
//	completed   all of its tasks are done
//	inProgress  one of its tasks is requested or done
//	acknowledged otherwise
//	cancelled   the order was cancelled before the item completed
//
// The order state:
//
//	acknowledged  no task requested yet
//	inProgress    a task is requested and not finished
//	held          a fallout case is open or assigned
//	completed     every task is done or skipped, no item partial
//	partial       every task is done or skipped, an item partial (TMF622:
//	              some items completed, others not); an order task
//	              skipped alone (plan 2's notify) does not make it partial
//	assessingCancellation, pendingCancellation, cancelled  see above
//	failed        only orders from before fallout cases
//
// Of the TMF622 states, pending is declared but not reachable.
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
	// Generation is the generation of the item's line tasks (see
	// plan.LineTaskIDAt): 0 for the tasks the order was created with, the
	// next one each time an amendment redoes the line.
	Generation int `json:"generation,omitempty"`
}

// TaskStatus is the state of one fulfillment task.
type TaskStatus string

// Task statuses.
const (
	TaskStatusWaiting TaskStatus = "waiting" // dependencies not done, not requested
	TaskStatusPending TaskStatus = "pending" // requested from a worker
	TaskStatusDone    TaskStatus = "done"
	TaskStatusFailed  TaskStatus = "failed"
	// TaskStatusSkipped: ops skipped the task (skipTask); its dependents
	// proceed as if it were done.
	TaskStatusSkipped TaskStatus = "skipped"
)

// Outcome is the last known outcome of a task's attempts, which decides
// which manual recovery is safe.
type Outcome string

// Task outcomes ("" while nothing went wrong).
const (
	// OutcomeUnknown: the last call may or may not have taken effect (a
	// timeout no query resolved).
	OutcomeUnknown Outcome = "unknown"
	// OutcomeFailed: the last call certainly had no effect (technical
	// failures only, or ops reconciled the task as absent).
	OutcomeFailed Outcome = "failed"
	// OutcomeRejected: the external system refused the task.
	OutcomeRejected Outcome = "rejected"
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
	// Outcome is the last known outcome of a failed attempt ("" if none).
	Outcome Outcome `json:"outcome,omitempty"`
	// Compensates is, for a compensation task (requested on cancellation,
	// Type = the compensation's name), the id of the task it undoes.
	Compensates string `json:"compensates,omitempty"`
	// DoneSeq is the order's progress counter when the task was done, so
	// that compensations run in reverse order of completion.
	DoneSeq int `json:"doneSeq,omitempty"`
	// Awaiting is set while the external system has accepted the task and
	// its result comes by callback ("callback"), or while the worker is
	// asked to query the system because the callback did not come ("query").
	Awaiting string `json:"awaiting,omitempty"`
	// CallbackChecks counts the queries requested for the attempt because
	// its callback did not come (at most MaxCallbackChecks).
	CallbackChecks int `json:"callbackChecks,omitempty"`
	// CallbackDue is when the armed callback timer fires, if one is.
	CallbackDue *time.Time `json:"callbackDue,omitempty"`
	// CompletedBy, Evidence: who completed or skipped the task by hand, and
	// the evidence they gave.
	CompletedBy string `json:"completedBy,omitempty"`
	Evidence    string `json:"evidence,omitempty"`
	// SupersededBy is the number of the amendment that retired the task
	// (see amend.go); 0 while the task is part of the plan.
	SupersededBy int `json:"supersededBy,omitempty"`
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
	// Progress counts task events (requested, completed, failed, skipped):
	// the stuck-order timer compares it with its value when armed.
	Progress int `json:"progress"`
	// TaskSLOSeconds is how long a requested task may go without progress
	// before the order opens a fallout case (DefaultTaskSLO when 0).
	TaskSLOSeconds int `json:"taskSloSeconds,omitempty"`
	// CallbackTimeoutSeconds is how long a task may await its callback
	// before the order asks for a query (see callbackTimeout when 0).
	CallbackTimeoutSeconds int `json:"callbackTimeoutSeconds,omitempty"`
	// Fallout lists the order's fallout cases, oldest first; none is ever
	// removed.
	Fallout []FalloutCase `json:"fallout"`
	// Cancellation is the order's cancel request (TMF622
	// CancelProductOrder), once one was accepted.
	Cancellation *Cancellation `json:"cancellation,omitempty"`
	// Amendments lists the accepted change orders, oldest first.
	Amendments []Amendment `json:"amendments,omitempty"`
	// RequestedCompletionDate is the create command's requested date, if
	// any. CommittedDate is the date the order is committed to complete by,
	// JeopardyAt when that date becomes at risk (jeopardy.go); both absent
	// on orders created before committed dates.
	RequestedCompletionDate *time.Time `json:"requestedCompletionDate,omitempty"`
	CommittedDate           *time.Time `json:"committedDate,omitempty"`
	JeopardyAt              *time.Time `json:"jeopardyAt,omitempty"`
	// Milestones are the points the order reached, oldest first
	// (milestones.go); JeopardyAlerts the alerts it raised (jeopardy.go).
	Milestones     []Milestone     `json:"milestones"`
	JeopardyAlerts []JeopardyAlert `json:"jeopardyAlerts"`
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

func cloneCases(cs []FalloutCase) []FalloutCase {
	if cs == nil {
		return nil
	}
	out := make([]FalloutCase, len(cs))
	for i, c := range cs {
		out[i] = c
		out[i].Notes = append([]Note(nil), c.Notes...)
	}
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
