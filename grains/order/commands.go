package order

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
)

// Command wire names.
const (
	CmdCreate       = "create"
	CmdCompleteTask = "completeTask"
	CmdFailTask     = "failTask"
	CmdCancel       = "cancel"
	// Manual recovery, role ops, each with a reason.
	CmdRetryTask            = "retryTask"
	CmdCompleteTaskManually = "completeTaskManually"
	CmdSkipTask             = "skipTask"
	CmdReconcileTask        = "reconcileTask"
	CmdAssignFallout        = "assignFallout"
	// CmdAwaitTask is sent by a worker when the external system accepted a
	// task whose result comes by callback.
	CmdAwaitTask = "awaitTask"
	// CmdCheckProgress is sent by the order's "stuck" timer.
	CmdCheckProgress = "checkProgress"
)

// TimerStuck is the ID of the timer that checks an order for progress.
const TimerStuck = "stuck"

// DefaultTaskSLO is how long a requested task may go without progress
// before the order opens a fallout case, unless create sets taskSloSeconds.
const DefaultTaskSLO = time.Hour

// Create creates the order of an accepted quote. Its payload is exactly the
// payload of the quote's QuoteAccepted event. PlanVersion, optional, pins a
// decomposition plan version; absent or 0 means the plan catalog's default.
type Create struct {
	QuoteID      string        `json:"quoteId"`
	OrderID      string        `json:"orderId"`
	CustomerID   string        `json:"customerId"`
	CustomerName string        `json:"customerName"`
	Currency     string        `json:"currency"`
	Lines        []grains.Line `json:"lines"`
	OneTimeTotal string        `json:"oneTimeTotal"`
	MonthlyTotal string        `json:"monthlyTotal"`
	PriceHash    string        `json:"priceHash"`
	AcceptedBy   string        `json:"acceptedBy"`
	AcceptedAt   time.Time     `json:"acceptedAt"`
	PlanVersion  int           `json:"planVersion,omitempty"`
	// Channel, Revision and DocumentSHA256 are the rest of the quote's
	// acceptance evidence: how the acceptance reached us, which quote
	// revision was accepted and the SHA-256 of the document the customer
	// accepted. Absent in quotes accepted before they existed.
	Channel        string `json:"channel,omitempty"`
	Revision       int    `json:"revision,omitempty"`
	DocumentSHA256 string `json:"documentSha256,omitempty"`
	// TaskSLOSeconds, optional, overrides DefaultTaskSLO for this order.
	TaskSLOSeconds int `json:"taskSloSeconds,omitempty"`
	// CallbackTimeoutSeconds, optional, is how long a task awaits its
	// callback before the order asks for a query (DefaultCallbackTimeout,
	// or a quarter of the task SLO when shorter). Less than the task SLO.
	CallbackTimeoutSeconds int `json:"callbackTimeoutSeconds,omitempty"`
	// RequestedCompletionDate, optional (TMF622), becomes the order's
	// committed date; absent, the committed date is acceptedAt plus the
	// plan's lead time.
	RequestedCompletionDate *time.Time `json:"requestedCompletionDate,omitempty"`
	// JeopardyMarginSeconds, optional, is how long before the committed
	// date the order is at risk; absent, the plan's margin applies.
	JeopardyMarginSeconds int `json:"jeopardyMarginSeconds,omitempty"`
}

// CompleteTask reports a task done, with the worker's result (a JSON object).
type CompleteTask struct {
	TaskID string          `json:"taskId"`
	Result json.RawMessage `json:"result,omitempty"`
}

// FailTask reports a task failed for good. Cause, optional, classifies the
// failure (retries_exhausted, business_rejection, unknown_outcome); absent,
// it is retries_exhausted when Reason is "retries exhausted" and
// business_rejection otherwise.
type FailTask struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
	Cause  Cause  `json:"cause,omitempty"`
}

// Cancel asks to cancel an order that has not finished (TMF622
// CancelProductOrder).
type Cancel struct {
	Reason string `json:"reason"`
}

// RetryTask requests a failed (or stuck) task again, as a new attempt.
type RetryTask struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
}

// CompleteTaskManually marks a failed (or stuck) task done by hand, with
// the evidence that its effect exists.
type CompleteTaskManually struct {
	TaskID   string `json:"taskId"`
	Reason   string `json:"reason"`
	Evidence string `json:"evidence"`
}

// SkipTask marks a failed (or stuck) task skipped; its dependents proceed.
type SkipTask struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
}

// ReconcileTask records what ops found at the external system for a task
// whose outcome is unknown: Effect "present" completes the task (as
// completeTaskManually), "absent" makes its outcome known-failed so that it
// may be retried.
type ReconcileTask struct {
	TaskID   string `json:"taskId"`
	Reason   string `json:"reason"`
	Effect   string `json:"effect"`
	Evidence string `json:"evidence"`
}

// Reconciled effects.
const (
	EffectPresent = "present"
	EffectAbsent  = "absent"
)

// AssignFallout gives a fallout case to an owner (a person or a queue).
type AssignFallout struct {
	CaseID string `json:"caseId"`
	Owner  string `json:"owner"`
	Note   string `json:"note,omitempty"`
}

// AwaitTask reports that the external system accepted a task whose result
// comes by callback (Awaiting "callback").
type AwaitTask struct {
	TaskID   string `json:"taskId"`
	Awaiting string `json:"awaiting"`
}

// CheckProgress is the stuck timer's command: Progress is the order's
// progress counter when the timer was armed.
type CheckProgress struct {
	Progress int `json:"progress"`
}

// CommandName implements grains.Command.
func (Create) CommandName() string { return CmdCreate }

// CommandName implements grains.Command.
func (CompleteTask) CommandName() string { return CmdCompleteTask }

// CommandName implements grains.Command.
func (FailTask) CommandName() string { return CmdFailTask }

// CommandName implements grains.Command.
func (Cancel) CommandName() string { return CmdCancel }

// CommandName implements grains.Command.
func (RetryTask) CommandName() string { return CmdRetryTask }

// CommandName implements grains.Command.
func (CompleteTaskManually) CommandName() string { return CmdCompleteTaskManually }

// CommandName implements grains.Command.
func (SkipTask) CommandName() string { return CmdSkipTask }

// CommandName implements grains.Command.
func (ReconcileTask) CommandName() string { return CmdReconcileTask }

// CommandName implements grains.Command.
func (AssignFallout) CommandName() string { return CmdAssignFallout }

// CommandName implements grains.Command.
func (AwaitTask) CommandName() string { return CmdAwaitTask }

// CommandName implements grains.Command.
func (CheckProgress) CommandName() string { return CmdCheckProgress }

// DecodeCommand decodes a wire command. Unknown names and malformed JSON are
// CodeBadRequest; missing or invalid fields are CodeValidation with one
// violation per field. create tolerates unknown fields (it is fed from the
// QuoteAccepted event, whose schema may grow); the others reject them.
func DecodeCommand(name string, payload []byte) (grains.Command, error) {
	switch name {
	case CmdCreate:
		var c Create
		if err := grains.DecodePayload(name, payload, &c, false); err != nil {
			return nil, err
		}
		return c, c.validate()
	case CmdCompleteTask:
		var c CompleteTask
		if err := grains.DecodePayload(name, payload, &c, true); err != nil {
			return nil, err
		}
		var v grains.Violations
		if c.TaskID == "" {
			v.Add("/taskId", "required", "taskId is required")
		}
		if len(c.Result) > 0 && string(c.Result) != "null" && c.Result[0] != '{' {
			v.Add("/result", "type", "result must be a JSON object")
		}
		return c, v.Err(name)
	case CmdFailTask:
		var c FailTask
		if err := grains.DecodePayload(name, payload, &c, true); err != nil {
			return nil, err
		}
		var v grains.Violations
		if c.TaskID == "" {
			v.Add("/taskId", "required", "taskId is required")
		}
		if c.Reason == "" {
			v.Add("/reason", "required", "reason is required")
		}
		switch c.Cause {
		case "", CauseRetriesExhausted, CauseBusinessRejection, CauseUnknownOutcome:
		default:
			v.Add("/cause", "enum", "cause must be retries_exhausted, business_rejection or unknown_outcome")
		}
		return c, v.Err(name)
	case CmdRetryTask:
		return decodeTaskCommand[RetryTask](name, payload, func(c RetryTask, v *grains.Violations) {
			needTaskAndReason(v, c.TaskID, c.Reason)
		})
	case CmdCompleteTaskManually:
		return decodeTaskCommand[CompleteTaskManually](name, payload, func(c CompleteTaskManually, v *grains.Violations) {
			needTaskAndReason(v, c.TaskID, c.Reason)
			if strings.TrimSpace(c.Evidence) == "" {
				v.Add("/evidence", "required", "evidence is required")
			}
		})
	case CmdSkipTask:
		return decodeTaskCommand[SkipTask](name, payload, func(c SkipTask, v *grains.Violations) {
			needTaskAndReason(v, c.TaskID, c.Reason)
		})
	case CmdReconcileTask:
		return decodeTaskCommand[ReconcileTask](name, payload, func(c ReconcileTask, v *grains.Violations) {
			needTaskAndReason(v, c.TaskID, c.Reason)
			if c.Effect != EffectPresent && c.Effect != EffectAbsent {
				v.Add("/effect", "enum", "effect must be present or absent")
			}
			if strings.TrimSpace(c.Evidence) == "" {
				v.Add("/evidence", "required", "evidence is required")
			}
		})
	case CmdAssignFallout:
		return decodeTaskCommand[AssignFallout](name, payload, func(c AssignFallout, v *grains.Violations) {
			if c.CaseID == "" {
				v.Add("/caseId", "required", "caseId is required")
			}
			if strings.TrimSpace(c.Owner) == "" {
				v.Add("/owner", "required", "owner is required")
			}
		})
	case CmdAwaitTask:
		return decodeTaskCommand[AwaitTask](name, payload, func(c AwaitTask, v *grains.Violations) {
			if c.TaskID == "" {
				v.Add("/taskId", "required", "taskId is required")
			}
			if c.Awaiting != AwaitingCallback {
				v.Add("/awaiting", "enum", "awaiting must be callback")
			}
		})
	case CmdCheckCallback:
		return decodeCheckCallback(payload)
	case CmdCheckJeopardy:
		return decodeTaskCommand[CheckJeopardy](name, payload, func(c CheckJeopardy, v *grains.Violations) { c.check(v) })
	case CmdCheckProgress:
		return decodeTaskCommand[CheckProgress](name, payload, func(c CheckProgress, v *grains.Violations) {
			if c.Progress < 0 {
				v.Add("/progress", "min", "progress must not be negative")
			}
		})
	case CmdAmend:
		return decodeAmend(payload)
	case CmdCancel:
		var c Cancel
		if err := grains.DecodePayload(name, payload, &c, true); err != nil {
			return nil, err
		}
		var v grains.Violations
		if c.Reason == "" {
			v.Add("/reason", "required", "reason is required")
		}
		return c, v.Err(name)
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "unknown order command %q", name)
}

// AwaitingCallback is AwaitTask's one Awaiting value.
const AwaitingCallback = "callback"

// decodeTaskCommand decodes a strict payload into C and checks it.
func decodeTaskCommand[C grains.Command](name string, payload []byte, check func(C, *grains.Violations)) (grains.Command, error) {
	var c C
	if err := grains.DecodePayload(name, payload, &c, true); err != nil {
		return nil, err
	}
	var v grains.Violations
	check(c, &v)
	return c, v.Err(name)
}

func needTaskAndReason(v *grains.Violations, taskID, reason string) {
	if taskID == "" {
		v.Add("/taskId", "required", "taskId is required")
	}
	if strings.TrimSpace(reason) == "" {
		v.Add("/reason", "required", "reason is required")
	}
}

func (c Create) validate() error {
	var v grains.Violations
	if c.QuoteID == "" {
		v.Add("/quoteId", "required", "quoteId is required")
	}
	if c.OrderID == "" {
		v.Add("/orderId", "required", "orderId is required")
	} else if c.QuoteID != "" && c.OrderID != IDForQuote(c.QuoteID) {
		v.Add("/orderId", "mismatch", "orderId must be "+IDForQuote(c.QuoteID)+" for quote "+c.QuoteID)
	}
	if c.CustomerID == "" {
		v.Add("/customerId", "required", "customerId is required")
	}
	if c.Currency == "" {
		v.Add("/currency", "required", "currency is required")
	}
	if c.PriceHash == "" {
		v.Add("/priceHash", "required", "priceHash is required")
	}
	if c.OneTimeTotal == "" {
		v.Add("/oneTimeTotal", "required", "oneTimeTotal is required")
	}
	if c.MonthlyTotal == "" {
		v.Add("/monthlyTotal", "required", "monthlyTotal is required")
	}
	if len(c.Lines) == 0 {
		v.Add("/lines", "required", "an order needs at least one line")
	}
	if c.TaskSLOSeconds < 0 {
		v.Add("/taskSloSeconds", "min", "taskSloSeconds must be positive, or absent for the default")
	}
	slo := DefaultTaskSLO
	if c.TaskSLOSeconds > 0 {
		slo = time.Duration(c.TaskSLOSeconds) * time.Second
	}
	switch {
	case c.CallbackTimeoutSeconds < 0:
		v.Add("/callbackTimeoutSeconds", "min", "callbackTimeoutSeconds must be positive, or absent for the default")
	case time.Duration(c.CallbackTimeoutSeconds)*time.Second >= slo:
		v.Add("/callbackTimeoutSeconds", "max", "callbackTimeoutSeconds must be less than the task SLO ("+slo.String()+")")
	}
	if c.JeopardyMarginSeconds < 0 {
		v.Add("/jeopardyMarginSeconds", "min", "jeopardyMarginSeconds must be positive, or absent for the plan's margin")
	}
	if c.PlanVersion < 0 {
		v.Add("/planVersion", "min", "planVersion must be positive, or absent for the default")
	}
	seen := map[string]bool{}
	for i, l := range c.Lines {
		at := "/lines/" + strconv.Itoa(i)
		if l.LineID == "" {
			v.Add(at+"/lineId", "required", "lineId is required")
		} else if seen[l.LineID] {
			v.Add(at+"/lineId", "duplicate", "lineId "+l.LineID+" appears twice")
		}
		seen[l.LineID] = true
		if l.OfferingID == "" {
			v.Add(at+"/offeringId", "required", "offeringId is required")
		}
		if l.Quantity < 1 {
			v.Add(at+"/quantity", "min", "quantity must be at least 1")
		}
	}
	return v.Err(CmdCreate)
}
