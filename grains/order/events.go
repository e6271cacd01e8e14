package order

import (
	"encoding/json"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// Event wire names.
const (
	EvCreated       = "OrderCreated"
	EvTaskRequested = "FulfillmentTaskRequested"
	EvTaskCompleted = "FulfillmentTaskCompleted"
	EvTaskFailed    = "FulfillmentTaskFailed"
	EvCompleted     = "OrderCompleted"
	EvFailed        = "OrderFailed"
	EvCancelled     = "OrderCancelled"
)

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
	Items        []Item          `json:"items,omitempty"`
	Tasks        []plan.Task     `json:"tasks,omitempty"`
	AcceptedBy   string          `json:"acceptedBy"`
	AcceptedAt   time.Time       `json:"acceptedAt"`
	CreatedAt    time.Time       `json:"createdAt"`
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
}

// TaskCompleted: a worker finished a task.
type TaskCompleted struct {
	OrderID     string          `json:"orderId"`
	QuoteID     string          `json:"quoteId"`
	Status      Status          `json:"status"`
	TaskID      string          `json:"taskId"`
	Result      json.RawMessage `json:"result"`
	CompletedAt time.Time       `json:"completedAt"`
}

// TaskFailed: a task failed for good.
type TaskFailed struct {
	OrderID  string    `json:"orderId"`
	QuoteID  string    `json:"quoteId"`
	Status   Status    `json:"status"`
	TaskID   string    `json:"taskId"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failedAt"`
}

// Completed: every task is done.
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
}

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
