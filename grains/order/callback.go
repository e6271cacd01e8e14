package order

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/grainline/grainline/grains"
)

// Callback reconciliation (ADR 0022). A worker whose external system
// accepted a task and will report its result by callback sends awaitTask;
// the task then awaits its callback and the order arms a durable per-task
// timer ("callback:<taskId>") at the order's callback timeout:
//
//	pending --awaitTask--> awaiting callback (timer armed while rounds are left)
//	awaiting callback --checkCallback (the timer)--> awaiting query   (FulfillmentTaskQueryRequested)
//	awaiting query --awaitTask (the system still says pending)--> awaiting callback (timer armed again)
//	awaiting callback|query --completeTask|failTask (callback or query)--> done|failed (timer cancelled)
//
// The worker answers a query request by asking the external system by the
// task's idempotency key: active completes the task, rejected fails it
// (business_rejection), pending sends awaitTask again, absent calls the
// system again with the same key. At most MaxCallbackChecks queries are
// requested per attempt; after the last one the task keeps awaiting its
// callback and the stuck timer opens a fallout case with cause
// awaiting_callback. A callback that arrives after a query completed the
// task is a no-op.

// CmdCheckCallback is sent by a task's callback timer.
const CmdCheckCallback = "checkCallback"

// EvTaskQueryRequested is the wire name of TaskQueryRequested.
const EvTaskQueryRequested = "FulfillmentTaskQueryRequested"

// AwaitingQuery is Task.Awaiting while the order waits for the worker to
// query the external system about a task whose callback did not come.
const AwaitingQuery = "query"

// MaxCallbackChecks bounds the reconciliation queries of one task attempt.
const MaxCallbackChecks = 3

// DefaultCallbackTimeout is how long a task awaits its callback before the
// order asks for a query, unless create sets callbackTimeoutSeconds. It is
// shortened to a quarter of the task SLO when that is shorter, so that the
// queries run before the stuck timer fires.
const DefaultCallbackTimeout = 10 * time.Minute

// timerCallbackPrefix starts the ID of a task's callback timer.
const timerCallbackPrefix = "callback:"

// CallbackTimerID is the ID of the callback timer of task taskID.
func CallbackTimerID(taskID string) string { return timerCallbackPrefix + taskID }

// CheckCallback is the callback timer's command: Attempt and Round are the
// task's attempt and the query round the timer was armed for (its
// CallbackChecks + 1). A firing for another attempt or round is stale.
type CheckCallback struct {
	TaskID  string `json:"taskId"`
	Attempt int    `json:"attempt"`
	Round   int    `json:"round"`
}

// CommandName implements grains.Command.
func (CheckCallback) CommandName() string { return CmdCheckCallback }

func decodeCheckCallback(payload []byte) (grains.Command, error) {
	return decodeTaskCommand[CheckCallback](CmdCheckCallback, payload, func(c CheckCallback, v *grains.Violations) {
		if c.TaskID == "" {
			v.Add("/taskId", "required", "taskId is required")
		}
		if c.Attempt < 1 {
			v.Add("/attempt", "min", "attempt must be at least 1")
		}
		if c.Round < 1 || c.Round > MaxCallbackChecks {
			v.Add("/round", "range", fmt.Sprintf("round must be from 1 to %d", MaxCallbackChecks))
		}
	})
}

// CallbackCheck arms a task's callback timer: at At the order asks for
// query round Round of attempt Attempt unless the task finished.
type CallbackCheck struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Round   int       `json:"round"`
}

// callbackTimer is the timer effect of a TaskAwaiting carrying check.
func callbackTimer(taskID string, check *CallbackCheck) []grains.Timer {
	if check == nil {
		return nil
	}
	payload, _ := json.Marshal(CheckCallback{TaskID: taskID, Attempt: check.Attempt, Round: check.Round}) // strings and ints
	return []grains.Timer{{ID: CallbackTimerID(taskID), At: check.At, Command: CmdCheckCallback, Payload: payload}}
}

// TaskQueryRequested: a task's callback did not come within the callback
// timeout; the worker is to ask the external system about it by the task's
// idempotency key (query round Round, from 1). Not progress: the stuck timer
// keeps running.
type TaskQueryRequested struct {
	OrderID  string        `json:"orderId"`
	QuoteID  string        `json:"quoteId"`
	Status   Status        `json:"status"`
	TaskID   string        `json:"taskId"`
	TaskType string        `json:"taskType"`
	Attempt  int           `json:"attempt"`
	Round    int           `json:"round"`
	Lines    []grains.Line `json:"lines"`
	LineID   string        `json:"lineId,omitempty"`
}

// EventName implements grains.Event.
func (TaskQueryRequested) EventName() string { return EvTaskQueryRequested }

// callbackTimeout is how long a task awaits its callback before a query.
func (s State) callbackTimeout() time.Duration {
	if s.CallbackTimeoutSeconds > 0 {
		return time.Duration(s.CallbackTimeoutSeconds) * time.Second
	}
	return min(DefaultCallbackTimeout, s.taskSLO()/4)
}

// callbackCheck arms the callback timer of t (just awaiting) unless its
// queries are used up.
func (s State) callbackCheck(t Task, now time.Time) *CallbackCheck {
	if t.CallbackChecks >= MaxCallbackChecks {
		return nil
	}
	return &CallbackCheck{At: now.Add(s.callbackTimeout()), Attempt: t.Attempt, Round: t.CallbackChecks + 1}
}

// reportedTask checks what every report on a task needs (a worker's
// result, a wait, a timer): role system, an existing order and a task of
// it. It returns the task's index.
func reportedTask(s State, command, taskID string, env grains.Env) (int, error) {
	return taskFor(s, command, taskID, env, RoleSystem)
}

// taskFor checks that env has role, the order exists and has task taskID,
// and returns the task's index.
func taskFor(s State, command, taskID string, env grains.Env, role string) (int, error) {
	if err := grains.RequireRole(env, command, role); err != nil {
		return -1, err
	}
	if !Exists(s) {
		return -1, grains.NotFound(grains.KindOrder, env.ID, command)
	}
	i := s.task(taskID)
	if i < 0 {
		return -1, unknownTask(s, command, taskID)
	}
	return i, nil
}

func decideAwaitTask(s State, c AwaitTask, env grains.Env) ([]grains.Event, error) {
	i, err := reportedTask(s, CmdAwaitTask, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	t := s.Tasks[i]
	switch {
	case t.Status != TaskStatusPending:
		return nil, nil // the result came first
	case t.Awaiting == c.Awaiting:
		return nil, nil // reported again
	}
	b := batch{s: s}
	b.add(TaskAwaiting{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: t.TaskID, Awaiting: c.Awaiting,
		Callback: s.callbackCheck(t, env.Now.UTC())})
	return b.evs, nil
}

// decideCheckCallback is a task's callback timer firing: when the task
// still awaits the callback of the attempt and round the timer was armed
// for, the order asks the worker for a query.
func decideCheckCallback(s State, c CheckCallback, env grains.Env) ([]grains.Event, error) {
	i, err := reportedTask(s, CmdCheckCallback, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	t := s.Tasks[i]
	if !s.live() || t.Status != TaskStatusPending || t.Awaiting != AwaitingCallback ||
		t.Attempt != c.Attempt || c.Round != t.CallbackChecks+1 {
		return nil, nil // finished, answered or re-armed since: a stale timer
	}
	b := batch{s: s}
	b.add(TaskQueryRequested{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: t.TaskID, TaskType: t.Type,
		Attempt: t.Attempt, Round: c.Round, Lines: s.linesOf(t), LineID: t.LineID})
	return b.evs, nil
}

// withCallbackCancel returns ev, an event about to be folded into s, with
// the callback timer of its task to cancel when the event ends the task's
// wait for a callback while that timer is armed.
func withCallbackCancel(s State, ev grains.Event) grains.Event {
	armed := func(taskID string) string {
		if i := s.task(taskID); i >= 0 && s.Tasks[i].CallbackDue != nil {
			return CallbackTimerID(taskID)
		}
		return ""
	}
	switch e := ev.(type) {
	case TaskRequested:
		e.CancelTimer = armed(e.TaskID)
		return e
	case TaskCompleted:
		e.CancelTimer = armed(e.TaskID)
		return e
	case TaskFailed:
		e.CancelTimer = armed(e.TaskID)
		return e
	case TaskSkipped:
		e.CancelTimer = armed(e.TaskID)
		return e
	case TaskReconciled:
		e.CancelTimer = armed(e.TaskID)
		return e
	}
	return ev
}

// cancelling is the cancel list of a timer effect that cancels id, if any.
func cancelling(id string) []string {
	if id == "" {
		return nil
	}
	return []string{id}
}

// applyCallback folds the callback events into s.
func applyCallback(s State, ev grains.Event) State {
	switch e := ev.(type) {
	case TaskAwaiting:
		s = s.updateTask(e.TaskID, func(t *Task) {
			t.Awaiting, t.CallbackDue = e.Awaiting, nil
			if e.Callback != nil {
				at := e.Callback.At
				t.CallbackDue = &at
			}
		})
		s.Status = e.Status
	case TaskQueryRequested:
		s = s.updateTask(e.TaskID, func(t *Task) {
			t.Awaiting, t.CallbackChecks, t.CallbackDue = AwaitingQuery, e.Round, nil
		})
		s.Status = e.Status
	}
	return s
}
