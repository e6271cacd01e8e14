package order

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// Behavior is the order grain kind as the runtime drives it, with the
// built-in plan catalog (plan.Builtin).
var Behavior = behaviorFor(plan.Builtin())

// NewBehavior returns the order grain kind deciding with plans: new orders
// pin plans.Default unless their create command names a version of plans.
// Orders already created keep the tasks of the version they pinned, whatever
// plans holds now.
func NewBehavior(plans plan.Catalog) (grains.Behavior[State], error) {
	if err := plans.Validate(); err != nil {
		return grains.Behavior[State]{}, fmt.Errorf("order: %w", err)
	}
	return behaviorFor(plans), nil
}

func behaviorFor(plans plan.Catalog) grains.Behavior[State] {
	d := decider{plans: plans}
	return grains.Behavior[State]{
		Kind:          grains.KindOrder,
		Decide:        d.decide,
		Apply:         Apply,
		DecodeCommand: DecodeCommand,
		Exists:        Exists,
	}
}

// Decide returns the events cmd produces against s, with the built-in plans.
// Checks run in this order: role (CodeForbidden), existence (CodeNotFound, or
// for create the idempotent/CodeAlreadyExists rule), then the state machine
// (CodeInvalidTransition) and the command's meaning (CodeValidation).
func Decide(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
	return Behavior.Decide(s, cmd, env)
}

type decider struct {
	plans plan.Catalog
}

func (d decider) decide(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
	switch c := cmd.(type) {
	case Create:
		return d.decideCreate(s, c, env)
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

func (d decider) decideCreate(s State, c Create, env grains.Env) ([]grains.Event, error) {
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
	version := c.PlanVersion
	if version == 0 {
		version = d.plans.Default
	}
	tasks, err := d.plans.Decompose(env.ID, version, c.Lines)
	switch {
	case errors.Is(err, plan.ErrUnknownVersion):
		return nil, &grains.Error{Code: grains.CodeValidation,
			Message:    fmt.Sprintf("create: no decomposition plan version %d (known: %v)", version, d.plans.Versions()),
			Violations: []grains.Violation{{Pointer: "/planVersion", Code: "unknown", Message: "no such plan version"}}}
	case err != nil:
		return nil, &grains.Error{Code: grains.CodeValidation, Message: "create: " + err.Error()}
	}
	items := make([]Item, len(c.Lines))
	for i, l := range c.Lines {
		items[i] = Item{ID: l.LineID, Action: ActionAdd, State: StatusAcknowledged, OfferingID: l.OfferingID, Quantity: l.Quantity}
	}
	created := Created{
		OrderID: env.ID, QuoteID: c.QuoteID, Status: StatusAcknowledged, Tenant: env.Tenant,
		CustomerID: c.CustomerID, CustomerName: c.CustomerName, Currency: c.Currency,
		Lines: grains.CloneLines(c.Lines), OneTimeTotal: c.OneTimeTotal, MonthlyTotal: c.MonthlyTotal,
		PriceHash: c.PriceHash, PlanVersion: version, Items: items, Tasks: tasks,
		AcceptedBy: c.AcceptedBy, AcceptedAt: c.AcceptedAt.UTC(), CreatedAt: env.Now.UTC(),
	}
	evs := []grains.Event{created}
	next := Apply(s, created)
	return append(evs, requestReady(next)...), nil
}

// requestReady returns a TaskRequested for every waiting task of s whose
// dependencies are done, in task order.
func requestReady(s State) []grains.Event {
	var evs []grains.Event
	for _, i := range s.ready() {
		t := s.Tasks[i]
		lines := grains.CloneLines(s.Lines)
		if t.LineID != "" {
			lines = nil
			for _, l := range s.Lines {
				if l.LineID == t.LineID {
					lines = append(lines, l)
				}
			}
		}
		var deps []string
		if len(t.DependsOn) > 0 {
			deps = append(deps, t.DependsOn...)
		}
		evs = append(evs, TaskRequested{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusInProgress,
			TaskID: t.TaskID, TaskType: t.Type, Attempt: t.Attempt + 1, Lines: lines, LineID: t.LineID, DependsOn: deps})
	}
	return evs
}

// advance returns the events that follow a task result already folded into
// next: requests for the tasks it releases, then the order's outcome when
// nothing is left running.
func advance(next State, now time.Time) []grains.Event {
	evs := requestReady(next)
	if len(evs) > 0 {
		return evs
	}
	final, status, failed := next.outcome()
	switch {
	case !final:
		return nil
	case failed == nil:
		return []grains.Event{Completed{OrderID: next.ID, QuoteID: next.QuoteID, Status: status, CompletedAt: now}}
	default:
		return []grains.Event{Failed{OrderID: next.ID, QuoteID: next.QuoteID, Status: status,
			TaskID: failed.TaskID, Reason: failed.Reason, FailedAt: now}}
	}
}

// dependenciesPending is the error for a result of a task never requested.
func dependenciesPending(s State, command string, t Task) error {
	var open []string
	for _, d := range t.DependsOn {
		if i := s.task(d); i < 0 || s.Tasks[i].Status != TaskStatusDone {
			open = append(open, d)
		}
	}
	return &grains.Error{Code: grains.CodeInvalidTransition,
		Message: fmt.Sprintf("order %s is %s: %s is not allowed: task %s was not requested, its dependencies are not done: %s",
			s.ID, s.Status, command, t.TaskID, strings.Join(open, ", ")),
		Violations: []grains.Violation{{Pointer: "/taskId", Code: ViolationDependenciesPending,
			Message: "the task's dependencies are not done"}}}
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
	if s.Tasks[i].Status == TaskStatusWaiting {
		return nil, dependenciesPending(s, CmdCompleteTask, s.Tasks[i])
	}
	now := env.Now.UTC()
	done := TaskCompleted{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusInProgress,
		TaskID: c.TaskID, Result: c.Result, CompletedAt: now}
	return append([]grains.Event{done}, advance(Apply(s, done), now)...), nil
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
	if s.Tasks[i].Status == TaskStatusWaiting {
		return nil, dependenciesPending(s, CmdFailTask, s.Tasks[i])
	}
	now := env.Now.UTC()
	failed := TaskFailed{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusInProgress, TaskID: c.TaskID, Reason: c.Reason, FailedAt: now}
	return append([]grains.Event{failed}, advance(Apply(s, failed), now)...), nil
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
// Item states are recomputed from the tasks after every task event.
func Apply(s State, ev grains.Event) State {
	switch e := ev.(type) {
	case Created:
		at := e.AcceptedAt
		s = State{
			ID: e.OrderID, Tenant: e.Tenant, QuoteID: e.QuoteID, Status: e.Status,
			CustomerID: e.CustomerID, CustomerName: e.CustomerName, Currency: e.Currency,
			Lines: grains.CloneLines(e.Lines), OneTimeTotal: e.OneTimeTotal, MonthlyTotal: e.MonthlyTotal,
			PriceHash: e.PriceHash, PlanVersion: e.PlanVersion, Items: cloneItems(e.Items), Tasks: []Task{},
			AcceptedBy: e.AcceptedBy, AcceptedAt: &at, CreatedAt: e.CreatedAt,
		}
		for _, t := range e.Tasks {
			s.Tasks = append(s.Tasks, Task{TaskID: t.ID, Type: t.Type, LineID: t.LineID, DependsOn: t.DependsOn,
				PointOfNoReturn: t.PointOfNoReturn, Compensation: t.Compensation, Status: TaskStatusWaiting})
		}
	case TaskRequested:
		if i := s.task(e.TaskID); i >= 0 {
			s = s.updateTask(e.TaskID, func(t *Task) { t.Status, t.Attempt = TaskStatusPending, e.Attempt })
		} else {
			// An order created before plans were stored in OrderCreated.
			s.Tasks = append(cloneTasks(s.Tasks), Task{TaskID: e.TaskID, Type: e.TaskType, LineID: e.LineID,
				DependsOn: e.DependsOn, Status: TaskStatusPending, Attempt: e.Attempt})
		}
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskCompleted:
		s = s.updateTask(e.TaskID, func(t *Task) { t.Status, t.Result = TaskStatusDone, e.Result })
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskFailed:
		s = s.updateTask(e.TaskID, func(t *Task) { t.Status, t.Reason = TaskStatusFailed, e.Reason })
		s.Status = e.Status
		s = s.rollUpItems()
	case Completed:
		s.Status, s.CompletedAt = e.Status, timePtr(e.CompletedAt)
	case Failed:
		s.Status, s.FailureReason, s.FailedAt = e.Status, e.Reason, timePtr(e.FailedAt)
	case Cancelled:
		s.Status, s.CancelReason, s.CancelledBy, s.CancelledAt = e.Status, e.Reason, e.CancelledBy, timePtr(e.CancelledAt)
		s.Items = cloneItems(s.Items)
		for i, it := range s.Items {
			if it.State != StatusCompleted && it.State != StatusFailed {
				s.Items[i].State = StatusCancelled
			}
		}
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
