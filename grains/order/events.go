package order

import (
	"encoding/json"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// Event wire names.
const (
	EvCreated               = "OrderCreated"
	EvTaskRequested         = "FulfillmentTaskRequested"
	EvTaskCompleted         = "FulfillmentTaskCompleted"
	EvTaskFailed            = "FulfillmentTaskFailed"
	EvCompleted             = "OrderCompleted"
	EvFailed                = "OrderFailed"
	EvCancelled             = "OrderCancelled"
	EvTaskSkipped           = "FulfillmentTaskSkipped"
	EvTaskReconciled        = "FulfillmentTaskReconciled"
	EvTaskAwaiting          = "FulfillmentTaskAwaiting"
	EvFalloutOpened         = "FalloutOpened"
	EvFalloutAssigned       = "FalloutAssigned"
	EvFalloutResolved       = "FalloutResolved"
	EvCancellationRequested = "OrderCancellationRequested"
)

// Check arms the order's stuck timer: At is when the order must have made
// progress beyond Progress (its progress counter after the event).
type Check struct {
	At       time.Time `json:"at"`
	Progress int       `json:"progress"`
}

// stuckTimer is the timer effect of an event carrying check.
func stuckTimer(check *Check) ([]grains.Timer, []string) {
	if check == nil {
		return nil, nil
	}
	payload, _ := json.Marshal(CheckProgress{Progress: check.Progress}) // an int: cannot fail
	return []grains.Timer{{ID: TimerStuck, At: check.At, Command: CmdCheckProgress, Payload: payload}}, nil
}

// Every order event carries OrderID, QuoteID and Status, the order's status
// after the event, so that a projection can follow status from events alone.

// Created: the order exists, acknowledged, with its plan pinned: Items are
// its lines, Tasks the plan's decomposition (all waiting), so that the order
// never needs its plan version again.
type Created struct {
	OrderID      string          `json:"orderId"`
	QuoteID      string          `json:"quoteId"`
	Status       Status          `json:"status"`
	Tenant       grains.TenantID `json:"tenant"`
	CustomerID   string          `json:"customerId"`
	CustomerName string          `json:"customerName"`
	Currency     string          `json:"currency"`
	Lines        []grains.Line   `json:"lines"`
	OneTimeTotal string          `json:"oneTimeTotal"`
	MonthlyTotal string          `json:"monthlyTotal"`
	PriceHash    string          `json:"priceHash"`
	PlanVersion  int             `json:"planVersion"`
	// TaskSLOSeconds is the create command's override of DefaultTaskSLO.
	TaskSLOSeconds int `json:"taskSloSeconds,omitempty"`
	// CallbackTimeoutSeconds is the create command's override of the
	// callback timeout.
	CallbackTimeoutSeconds int         `json:"callbackTimeoutSeconds,omitempty"`
	Items                  []Item      `json:"items,omitempty"`
	Tasks                  []plan.Task `json:"tasks,omitempty"`
	AcceptedBy             string      `json:"acceptedBy"`
	AcceptedAt             time.Time   `json:"acceptedAt"`
	CreatedAt              time.Time   `json:"createdAt"`
	// RequestedCompletionDate is the create command's, if any;
	// CommittedDate and JeopardyAt are the order's commitment (see
	// jeopardy.go). Absent in events from before committed dates.
	RequestedCompletionDate *time.Time `json:"requestedCompletionDate,omitempty"`
	CommittedDate           *time.Time `json:"committedDate,omitempty"`
	JeopardyAt              *time.Time `json:"jeopardyAt,omitempty"`
}

// TaskRequested: a fulfillment task is to be executed by a worker; every
// task in DependsOn is done. Lines are the lines the task covers: its own
// line for a line task (LineID set), all lines for an order task.
type TaskRequested struct {
	OrderID   string        `json:"orderId"`
	QuoteID   string        `json:"quoteId"`
	Status    Status        `json:"status"`
	TaskID    string        `json:"taskId"`
	TaskType  string        `json:"taskType"`
	Attempt   int           `json:"attempt"`
	Lines     []grains.Line `json:"lines"`
	LineID    string        `json:"lineId,omitempty"`
	DependsOn []string      `json:"dependsOn,omitempty"`
	// Compensates is set on a compensation task (TaskType = the
	// compensation's name): the id of the task it undoes, whose external
	// idempotency key the worker uses.
	Compensates string `json:"compensates,omitempty"`
	// RequestedBy and Reason are set when ops retried the task by hand.
	RequestedBy string `json:"requestedBy,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Check       *Check `json:"check,omitempty"`
	// CancelTimer is the task's callback timer, cancelled by this event
	// because the task awaited a callback with the timer armed.
	CancelTimer string `json:"cancelTimer,omitempty"`
}

// TaskCompleted: a worker finished a task.
type TaskCompleted struct {
	OrderID     string          `json:"orderId"`
	QuoteID     string          `json:"quoteId"`
	Status      Status          `json:"status"`
	TaskID      string          `json:"taskId"`
	Result      json.RawMessage `json:"result"`
	CompletedAt time.Time       `json:"completedAt"`
	// CompletedBy, Reason and Evidence are set when ops completed the task
	// by hand (completeTaskManually, reconcileTask).
	CompletedBy string `json:"completedBy,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Evidence    string `json:"evidence,omitempty"`
	Check       *Check `json:"check,omitempty"`
	// CancelTimer is the task's callback timer, cancelled by this event
	// because the task awaited a callback with the timer armed.
	CancelTimer string `json:"cancelTimer,omitempty"`
}

// TaskFailed: a task failed for good.
type TaskFailed struct {
	OrderID  string    `json:"orderId"`
	QuoteID  string    `json:"quoteId"`
	Status   Status    `json:"status"`
	TaskID   string    `json:"taskId"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failedAt"`
	// Cause classifies the failure; "" in events from before fallout cases.
	Cause Cause  `json:"cause,omitempty"`
	Check *Check `json:"check,omitempty"`
	// CancelTimer is the task's callback timer, cancelled by this event
	// because the task awaited a callback with the timer armed.
	CancelTimer string `json:"cancelTimer,omitempty"`
}

// TaskSkipped: ops skipped a task; its dependents proceed.
type TaskSkipped struct {
	OrderID   string    `json:"orderId"`
	QuoteID   string    `json:"quoteId"`
	Status    Status    `json:"status"`
	TaskID    string    `json:"taskId"`
	SkippedBy string    `json:"skippedBy"`
	Reason    string    `json:"reason"`
	SkippedAt time.Time `json:"skippedAt"`
	Check     *Check    `json:"check,omitempty"`
	// CancelTimer is the task's callback timer, cancelled by this event
	// because the task awaited a callback with the timer armed.
	CancelTimer string `json:"cancelTimer,omitempty"`
}

// TaskReconciled: ops found the effect of a task whose outcome was unknown
// absent at the external system; the task's outcome is now failed, so it
// may be retried.
type TaskReconciled struct {
	OrderID      string    `json:"orderId"`
	QuoteID      string    `json:"quoteId"`
	Status       Status    `json:"status"`
	TaskID       string    `json:"taskId"`
	Effect       string    `json:"effect"`
	ReconciledBy string    `json:"reconciledBy"`
	Reason       string    `json:"reason"`
	Evidence     string    `json:"evidence"`
	ReconciledAt time.Time `json:"reconciledAt"`
	// CancelTimer is the task's callback timer, cancelled by this event
	// because the task awaited a callback with the timer armed.
	CancelTimer string `json:"cancelTimer,omitempty"`
}

// TaskAwaiting: the external system accepted a task whose result comes by
// callback. Callback, when set, arms the task's callback timer.
type TaskAwaiting struct {
	OrderID  string         `json:"orderId"`
	QuoteID  string         `json:"quoteId"`
	Status   Status         `json:"status"`
	TaskID   string         `json:"taskId"`
	Awaiting string         `json:"awaiting"`
	Callback *CallbackCheck `json:"callback,omitempty"`
}

// FalloutOpened: a task needs a person. The case starts open, owned by
// DefaultFalloutQueue.
type FalloutOpened struct {
	OrderID  string    `json:"orderId"`
	QuoteID  string    `json:"quoteId"`
	Status   Status    `json:"status"`
	CaseID   string    `json:"caseId"`
	TaskID   string    `json:"taskId"`
	Cause    Cause     `json:"cause"`
	Owner    string    `json:"owner"`
	Reason   string    `json:"reason"`
	OpenedAt time.Time `json:"openedAt"`
}

// FalloutAssigned: a case has a new owner.
type FalloutAssigned struct {
	OrderID    string    `json:"orderId"`
	QuoteID    string    `json:"quoteId"`
	Status     Status    `json:"status"`
	CaseID     string    `json:"caseId"`
	Owner      string    `json:"owner"`
	AssignedBy string    `json:"assignedBy"`
	Note       string    `json:"note,omitempty"`
	AssignedAt time.Time `json:"assignedAt"`
}

// FalloutResolved: a case is closed, resolved (CaseStatus "resolved") by a
// recovery of its task or cancelled with its order (CaseStatus
// "cancelled").
type FalloutResolved struct {
	OrderID    string     `json:"orderId"`
	QuoteID    string     `json:"quoteId"`
	Status     Status     `json:"status"`
	CaseID     string     `json:"caseId"`
	CaseStatus CaseStatus `json:"caseStatus"`
	Resolution string     `json:"resolution"`
	ResolvedBy string     `json:"resolvedBy"`
	Reason     string     `json:"reason,omitempty"`
	ResolvedAt time.Time  `json:"resolvedAt"`
}

// CancellationRequested: a cancel request was accepted; the order assesses
// its items (status assessingCancellation) and then compensates.
type CancellationRequested struct {
	OrderID     string    `json:"orderId"`
	QuoteID     string    `json:"quoteId"`
	Status      Status    `json:"status"`
	CancelID    string    `json:"cancelId"`
	Reason      string    `json:"reason"`
	RequestedBy string    `json:"requestedBy"`
	RequestedAt time.Time `json:"requestedAt"`
}

// Completed: every task is done or skipped. Status is completed, or
// partial when an item's tasks were skipped in part (rollup.go).
type Completed struct {
	OrderID     string    `json:"orderId"`
	QuoteID     string    `json:"quoteId"`
	Status      Status    `json:"status"`
	CompletedAt time.Time `json:"completedAt"`
}

// Failed: nothing is left running and a task failed (TaskID, Reason: the
// first failed task). Status is failed, or partial when some item completed.
type Failed struct {
	OrderID  string    `json:"orderId"`
	QuoteID  string    `json:"quoteId"`
	Status   Status    `json:"status"`
	TaskID   string    `json:"taskId"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failedAt"`
}

// Cancelled: the order was cancelled before it finished.
type Cancelled struct {
	OrderID     string    `json:"orderId"`
	QuoteID     string    `json:"quoteId"`
	Status      Status    `json:"status"`
	Reason      string    `json:"reason"`
	CancelledBy string    `json:"cancelledBy"`
	CancelledAt time.Time `json:"cancelledAt"`
	// CancelID is the cancel request that ended; "" in events from before
	// cancel requests.
	CancelID string `json:"cancelId,omitempty"`
}

// Timers implements grains.TimerEffects: (re-)arms the stuck timer and
// cancels the task's callback timer when it was armed.
func (e TaskRequested) Timers() ([]grains.Timer, []string) {
	set, _ := stuckTimer(e.Check)
	return set, cancelling(e.CancelTimer)
}

// Timers implements grains.TimerEffects: (re-)arms the stuck timer and
// cancels the task's callback timer when it was armed.
func (e TaskCompleted) Timers() ([]grains.Timer, []string) {
	set, _ := stuckTimer(e.Check)
	return set, cancelling(e.CancelTimer)
}

// Timers implements grains.TimerEffects: (re-)arms the stuck timer and
// cancels the task's callback timer when it was armed.
func (e TaskFailed) Timers() ([]grains.Timer, []string) {
	set, _ := stuckTimer(e.Check)
	return set, cancelling(e.CancelTimer)
}

// Timers implements grains.TimerEffects: (re-)arms the stuck timer and
// cancels the task's callback timer when it was armed.
func (e TaskSkipped) Timers() ([]grains.Timer, []string) {
	set, _ := stuckTimer(e.Check)
	return set, cancelling(e.CancelTimer)
}

// Timers implements grains.TimerEffects: cancels the task's callback timer
// when it was armed.
func (e TaskReconciled) Timers() ([]grains.Timer, []string) { return nil, cancelling(e.CancelTimer) }

// Timers implements grains.TimerEffects: arms the task's callback timer
// (when Callback is set).
func (e TaskAwaiting) Timers() ([]grains.Timer, []string) {
	return callbackTimer(e.TaskID, e.Callback), nil
}

// Timers implements grains.TimerEffects: a finished order is not stuck
// and not in jeopardy.
func (Completed) Timers() ([]grains.Timer, []string) { return nil, finishedTimers }

// Timers implements grains.TimerEffects: a finished order is not stuck
// and not in jeopardy.
func (Cancelled) Timers() ([]grains.Timer, []string) { return nil, finishedTimers }

// EventName implements grains.Event.
func (Created) EventName() string { return EvCreated }

// EventName implements grains.Event.
func (TaskRequested) EventName() string { return EvTaskRequested }

// EventName implements grains.Event.
func (TaskCompleted) EventName() string { return EvTaskCompleted }

// EventName implements grains.Event.
func (TaskFailed) EventName() string { return EvTaskFailed }

// EventName implements grains.Event.
func (Completed) EventName() string { return EvCompleted }

// EventName implements grains.Event.
func (Failed) EventName() string { return EvFailed }

// EventName implements grains.Event.
func (Cancelled) EventName() string { return EvCancelled }

// EventName implements grains.Event.
func (TaskSkipped) EventName() string { return EvTaskSkipped }

// EventName implements grains.Event.
func (TaskReconciled) EventName() string { return EvTaskReconciled }

// EventName implements grains.Event.
func (TaskAwaiting) EventName() string { return EvTaskAwaiting }

// EventName implements grains.Event.
func (FalloutOpened) EventName() string { return EvFalloutOpened }

// EventName implements grains.Event.
func (FalloutAssigned) EventName() string { return EvFalloutAssigned }

// EventName implements grains.Event.
func (FalloutResolved) EventName() string { return EvFalloutResolved }

// EventName implements grains.Event.
func (CancellationRequested) EventName() string { return EvCancellationRequested }

// DecodeEvent decodes an order event from its wire name and JSON payload.
// Unknown fields are ignored (events evolve additively); an unknown name or
// malformed JSON is a CodeBadRequest *grains.Error.
func DecodeEvent(name string, payload []byte) (grains.Event, error) {
	var ev grains.Event
	var err error
	switch name {
	case EvCreated:
		ev, err = decodeAs[Created](name, payload)
	case EvTaskRequested:
		ev, err = decodeAs[TaskRequested](name, payload)
	case EvTaskCompleted:
		ev, err = decodeAs[TaskCompleted](name, payload)
	case EvTaskFailed:
		ev, err = decodeAs[TaskFailed](name, payload)
	case EvCompleted:
		ev, err = decodeAs[Completed](name, payload)
	case EvFailed:
		ev, err = decodeAs[Failed](name, payload)
	case EvCancelled:
		ev, err = decodeAs[Cancelled](name, payload)
	case EvTaskSkipped:
		ev, err = decodeAs[TaskSkipped](name, payload)
	case EvTaskReconciled:
		ev, err = decodeAs[TaskReconciled](name, payload)
	case EvTaskAwaiting:
		ev, err = decodeAs[TaskAwaiting](name, payload)
	case EvTaskQueryRequested:
		ev, err = decodeAs[TaskQueryRequested](name, payload)
	case EvFalloutOpened:
		ev, err = decodeAs[FalloutOpened](name, payload)
	case EvFalloutAssigned:
		ev, err = decodeAs[FalloutAssigned](name, payload)
	case EvFalloutResolved:
		ev, err = decodeAs[FalloutResolved](name, payload)
	case EvCancellationRequested:
		ev, err = decodeAs[CancellationRequested](name, payload)
	case EvAmended:
		ev, err = decodeAs[Amended](name, payload)
	case EvJeopardyRaised:
		ev, err = decodeAs[JeopardyRaised](name, payload)
	default:
		return nil, grains.Errorf(grains.CodeBadRequest, "unknown order event %q", name)
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func decodeAs[E grains.Event](name string, payload []byte) (grains.Event, error) {
	var e E
	if err := grains.DecodePayload(name, payload, &e, false); err != nil {
		return nil, err
	}
	return e, nil
}
