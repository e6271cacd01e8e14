package order

import (
	"fmt"
	"time"

	"github.com/grainline/grainline/grains"
)

// Behavior is the order grain kind as the runtime drives it.
var Behavior = grains.Behavior[State]{
	Kind:          grains.KindOrder,
	Decide:        Decide,
	Apply:         Apply,
	DecodeCommand: DecodeCommand,
	Exists:        Exists,
}

// Decide returns the events cmd produces against s. Checks run in this order:
// role (CodeForbidden), existence (CodeNotFound, or for create the
// idempotent/CodeAlreadyExists rule), then the state machine
// (CodeInvalidTransition) and the command's meaning (CodeValidation).
func Decide(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
	switch c := cmd.(type) {
	case Create:
		return decideCreate(s, c, env)
	case CompleteTask:
		return decideCompleteTask(s, c, env)
	case FailTask:
		return decideFailTask(s, c, env)
	case Cancel:
		return decideCancel(s, c, env)
	case nil:
		return nil, grains.Errorf(grains.CodeBadRequest, "no order command")
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "unknown order command %q", cmd.CommandName())
}

func decideCreate(s State, c Create, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdCreate, RoleSystem); err != nil {
		return nil, err
	}
	if Exists(s) {
		if s.QuoteID == c.QuoteID {
			return nil, nil // QuoteAccepted delivered again: the order already exists
		}
		return nil, grains.Errorf(grains.CodeAlreadyExists, "order %s already exists for quote %s, not %s", s.ID, s.QuoteID, c.QuoteID)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if want := IDForQuote(c.QuoteID); env.ID != want {
		return nil, &grains.Error{Code: grains.CodeValidation,
			Message:    fmt.Sprintf("create: order id %q does not belong to quote %s (want %q)", env.ID, c.QuoteID, want),
			Violations: []grains.Violation{{Pointer: "/orderId", Code: "mismatch", Message: "the order's id must be " + want}}}
	}
	now := env.Now.UTC()
	taskID := TaskID(env.ID, TaskTypeProvision)
	return []grains.Event{
		Created{
			OrderID: env.ID, QuoteID: c.QuoteID, Status: StatusAcknowledged, Tenant: env.Tenant,
			CustomerID: c.CustomerID, CustomerName: c.CustomerName, Currency: c.Currency,
			Lines: grains.CloneLines(c.Lines), OneTimeTotal: c.OneTimeTotal, MonthlyTotal: c.MonthlyTotal,
			PriceHash: c.PriceHash, PlanVersion: PlanVersion,
			AcceptedBy: c.AcceptedBy, AcceptedAt: c.AcceptedAt.UTC(), CreatedAt: now,
		},
		TaskRequested{
			OrderID: env.ID, QuoteID: c.QuoteID, Status: StatusInProgress,
			TaskID: taskID, TaskType: TaskTypeProvision, Attempt: 1, Lines: grains.CloneLines(c.Lines),
		},
	}, nil
}

func decideCompleteTask(s State, c CompleteTask, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdCompleteTask, RoleSystem); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdCompleteTask)
	}
	i := s.task(c.TaskID)
	if i < 0 {
		return nil, unknownTask(s, CmdCompleteTask, c.TaskID)
	}
	switch s.Tasks[i].Status {
	case TaskStatusDone:
		return nil, nil // result delivered again
	case TaskStatusFailed:
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCompleteTask, "task "+c.TaskID+" already failed")
	}
	if s.Status != StatusInProgress {
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCompleteTask, "")
	}
	now := env.Now.UTC()
	evs := []grains.Event{TaskCompleted{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusInProgress,
		TaskID: c.TaskID, Result: c.Result, CompletedAt: now}}
	allDone := true
	for j, t := range s.Tasks {
		if j != i && t.Status != TaskStatusDone {
			allDone = false
		}
	}
	if allDone {
		evs = append(evs, Completed{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusCompleted, CompletedAt: now})
	}
	return evs, nil
}

func decideFailTask(s State, c FailTask, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdFailTask, RoleSystem); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdFailTask)
	}
	i := s.task(c.TaskID)
	if i < 0 {
		return nil, unknownTask(s, CmdFailTask, c.TaskID)
	}
	switch s.Tasks[i].Status {
	case TaskStatusFailed:
		return nil, nil // failure delivered again
	case TaskStatusDone:
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdFailTask, "task "+c.TaskID+" is already done")
	}
	if s.Status != StatusInProgress {
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdFailTask, "")
	}
	now := env.Now.UTC()
	return []grains.Event{
		TaskFailed{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusInProgress, TaskID: c.TaskID, Reason: c.Reason, FailedAt: now},
		Failed{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusFailed, TaskID: c.TaskID, Reason: c.Reason, FailedAt: now},
	}, nil
}

func decideCancel(s State, c Cancel, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdCancel, RoleSales, RoleOps); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdCancel)
	}
	if s.Status != StatusAcknowledged && s.Status != StatusInProgress {
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCancel, "")
	}
	if c.Reason == "" {
		return nil, grains.Violations{{Pointer: "/reason", Code: "required", Message: "reason is required"}}.Err(CmdCancel)
	}
	return []grains.Event{Cancelled{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusCancelled,
		Reason: c.Reason, CancelledBy: env.Actor, CancelledAt: env.Now.UTC()}}, nil
}

func unknownTask(s State, command, taskID string) error {
	return &grains.Error{Code: grains.CodeValidation,
		Message:    fmt.Sprintf("%s: order %s has no task %q", command, s.ID, taskID),
		Violations: []grains.Violation{{Pointer: "/taskId", Code: "unknown", Message: "no such task in this order"}}}
}

// Apply folds one event into s. Events it does not know leave s unchanged.
func Apply(s State, ev grains.Event) State {
	switch e := ev.(type) {
	case Created:
		at := e.AcceptedAt
		s = State{
			ID: e.OrderID, Tenant: e.Tenant, QuoteID: e.QuoteID, Status: e.Status,
			CustomerID: e.CustomerID, CustomerName: e.CustomerName, Currency: e.Currency,
			Lines: grains.CloneLines(e.Lines), OneTimeTotal: e.OneTimeTotal, MonthlyTotal: e.MonthlyTotal,
			PriceHash: e.PriceHash, PlanVersion: e.PlanVersion, Tasks: []Task{},
			AcceptedBy: e.AcceptedBy, AcceptedAt: &at, CreatedAt: e.CreatedAt,
		}
	case TaskRequested:
		s.Tasks = cloneTasks(s.Tasks)
		t := Task{TaskID: e.TaskID, Type: e.TaskType, Status: TaskStatusPending, Attempt: e.Attempt}
		if i := s.task(e.TaskID); i >= 0 {
			s.Tasks[i] = t
		} else {
			s.Tasks = append(s.Tasks, t)
		}
		s.Status = e.Status
	case TaskCompleted:
		s = s.updateTask(e.TaskID, func(t *Task) { t.Status, t.Result = TaskStatusDone, e.Result })
		s.Status = e.Status
	case TaskFailed:
		s = s.updateTask(e.TaskID, func(t *Task) { t.Status, t.Reason = TaskStatusFailed, e.Reason })
		s.Status = e.Status
	case Completed:
		s.Status, s.CompletedAt = e.Status, timePtr(e.CompletedAt)
	case Failed:
		s.Status, s.FailureReason, s.FailedAt = e.Status, e.Reason, timePtr(e.FailedAt)
	case Cancelled:
		s.Status, s.CancelReason, s.CancelledBy, s.CancelledAt = e.Status, e.Reason, e.CancelledBy, timePtr(e.CancelledAt)
	}
	return s
}

func (s State) updateTask(id string, f func(*Task)) State {
	s.Tasks = cloneTasks(s.Tasks)
	if i := s.task(id); i >= 0 {
		f(&s.Tasks[i])
	}
	return s
}

func timePtr(t time.Time) *time.Time { return &t }
