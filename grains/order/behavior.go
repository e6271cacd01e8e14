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
	case Amend:
		return d.decideAmend(s, c, env)
	case RetryTask:
		return decideRetryTask(s, c, env)
	case CompleteTaskManually:
		return decideCompleteManually(s, c.TaskID, c.Reason, c.Evidence, CmdCompleteTaskManually, env)
	case SkipTask:
		return decideSkipTask(s, c, env)
	case ReconcileTask:
		return decideReconcileTask(s, c, env)
	case AssignFallout:
		return decideAssignFallout(s, c, env)
	case AwaitTask:
		return decideAwaitTask(s, c, env)
	case CheckProgress:
		return decideCheckProgress(s, c, env)
	case CheckCallback:
		return decideCheckCallback(s, c, env)
	case CheckJeopardy:
		return decideCheckJeopardy(s, c, env)
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
		TaskSLOSeconds: c.TaskSLOSeconds, CallbackTimeoutSeconds: c.CallbackTimeoutSeconds,
	}
	created = withCommitment(created, c, d.commit(c, version, env.Now))
	b := batch{s: s}
	b.addAsIs(created)
	for _, ev := range requestReady(b.s) {
		b.add(ev)
	}
	b.arm(env.Now.UTC())
	return b.evs, nil
}

// requestReady returns a TaskRequested for every waiting task of s whose
// dependencies are done, in task order (their Status is left to the batch).
func requestReady(s State) []grains.Event {
	var evs []grains.Event
	for _, i := range s.ready() {
		t := s.Tasks[i]
		var deps []string
		if len(t.DependsOn) > 0 {
			deps = append(deps, t.DependsOn...)
		}
		evs = append(evs, TaskRequested{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusInProgress,
			TaskID: t.TaskID, TaskType: t.Type, Attempt: t.Attempt + 1, Lines: s.linesOf(t), LineID: t.LineID, DependsOn: deps})
	}
	return evs
}

// linesOf returns the lines task t covers: its own line for a line task,
// all lines for an order task.
func (s State) linesOf(t Task) []grains.Line {
	if t.LineID == "" {
		return grains.CloneLines(s.Lines)
	}
	if l, ok := s.formerLine(t); ok {
		return []grains.Line{l}
	}
	var lines []grains.Line
	for _, l := range s.Lines {
		if l.LineID == t.LineID {
			lines = append(lines, l)
		}
	}
	return lines
}

// batch builds the events of one decision, folding each into s as it goes,
// so that a later event sees the earlier ones.
type batch struct {
	s   State
	evs []grains.Event
}

// add appends ev with Status set to the order's live status after it.
func (b *batch) add(ev grains.Event) {
	ev = withStatus(ev, Apply(b.s, ev).liveStatus())
	b.addAsIs(ev)
}

// addAsIs appends ev with the Status it carries.
func (b *batch) addAsIs(ev grains.Event) {
	ev = withCallbackCancel(b.s, ev)
	b.s = Apply(b.s, ev)
	b.evs = append(b.evs, ev)
}

// liveStatus is the status of an order that has not finished: assessing or
// pending cancellation while a cancel request runs, held while a fallout
// case is active, else inProgress.
func (s State) liveStatus() Status {
	if s.Cancellation != nil {
		switch s.Cancellation.State {
		case CancelAcknowledged:
			return StatusAssessingCancellation
		case CancelInProgress:
			return StatusPendingCancellation
		}
	}
	if s.anyActiveCase() {
		return StatusHeld
	}
	return StatusInProgress
}

// live reports whether the order is running (not finished, not only
// acknowledged).
func (s State) live() bool {
	switch s.Status {
	case StatusInProgress, StatusHeld, StatusAssessingCancellation, StatusPendingCancellation:
		return true
	}
	return false
}

// withStatus returns ev with its Status set to st.
func withStatus(ev grains.Event, st Status) grains.Event {
	switch e := ev.(type) {
	case TaskRequested:
		e.Status = st
		return e
	case TaskCompleted:
		e.Status = st
		return e
	case TaskFailed:
		e.Status = st
		return e
	case TaskSkipped:
		e.Status = st
		return e
	case TaskReconciled:
		e.Status = st
		return e
	case TaskAwaiting:
		e.Status = st
		return e
	case TaskQueryRequested:
		e.Status = st
		return e
	case FalloutOpened:
		e.Status = st
		return e
	case FalloutAssigned:
		e.Status = st
		return e
	case FalloutResolved:
		e.Status = st
		return e
	case CancellationRequested:
		e.Status = st
		return e
	}
	return ev
}

// proceed adds what follows a task event already in the batch: the next
// cancellation step while a cancel request runs, else the tasks it releases
// and the order's outcome once nothing is left running.
func (b *batch) proceed(now time.Time) {
	if b.s.cancelling() {
		b.cancelStep(now)
		return
	}
	b.unwindStep()
	for _, ev := range requestReady(b.s) {
		b.add(ev)
	}
	if b.s.anyActiveCase() {
		return // held: a person decides
	}
	if running, _ := b.s.unwinding(""); running {
		return // an amendment's retired tasks are being undone
	}
	final, status, failed := b.s.outcome()
	switch {
	case !final:
	case failed == nil:
		b.addAsIs(Completed{OrderID: b.s.ID, QuoteID: b.s.QuoteID, Status: status, CompletedAt: now})
	default:
		// Only orders whose tasks failed before fallout cases existed.
		b.addAsIs(Failed{OrderID: b.s.ID, QuoteID: b.s.QuoteID, Status: status,
			TaskID: failed.TaskID, Reason: failed.Reason, FailedAt: now})
	}
}

// cancelStep moves a running cancel request on: once no task it waits for
// runs, it requests the next compensation (latest done task first, one at a
// time), or cancels the order when nothing is left to undo.
func (b *batch) cancelStep(now time.Time) {
	s := b.s
	if !s.cancelling() {
		return
	}
	if s.Cancellation.State == CancelAcknowledged && s.awaitingAssessment() {
		return
	}
	if s.compensationRunning() {
		return
	}
	if next := s.toCompensate(); len(next) > 0 {
		t := next[0]
		b.add(TaskRequested{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: compensationTaskID(t.TaskID, t.Compensation),
			TaskType: t.Compensation, Attempt: 1, Lines: s.linesOf(t), LineID: t.LineID, Compensates: t.TaskID})
		return
	}
	c := s.Cancellation
	b.addAsIs(Cancelled{OrderID: s.ID, QuoteID: s.QuoteID, Status: StatusCancelled, Reason: c.Reason,
		CancelledBy: c.RequestedBy, CancelledAt: now, CancelID: c.ID})
}

// arm sets the stuck timer on the batch's last task event when a requested
// task without an active case is left: the order must progress within its
// task SLO.
func (b *batch) arm(now time.Time) {
	if !b.s.live() || !b.s.awaitsWorker() {
		return
	}
	check := &Check{At: now.Add(b.s.taskSLO()), Progress: b.s.Progress}
	for i := len(b.evs) - 1; i >= 0; i-- {
		switch e := b.evs[i].(type) {
		case TaskRequested:
			e.Check = check
			b.evs[i] = e
		case TaskCompleted:
			e.Check = check
			b.evs[i] = e
		case TaskFailed:
			e.Check = check
			b.evs[i] = e
		case TaskSkipped:
			e.Check = check
			b.evs[i] = e
		default:
			continue
		}
		return
	}
}

// awaitsWorker reports whether a requested task has no active case.
func (s State) awaitsWorker() bool {
	for _, t := range s.Tasks {
		if t.Status == TaskStatusPending && len(s.activeCases(t.TaskID)) == 0 {
			return true
		}
	}
	return false
}

// taskSLO is how long a requested task may go without progress.
func (s State) taskSLO() time.Duration {
	if s.TaskSLOSeconds > 0 {
		return time.Duration(s.TaskSLOSeconds) * time.Second
	}
	return DefaultTaskSLO
}

// dependenciesPending is the error for a result of a task never requested.
func dependenciesPending(s State, command string, t Task) error {
	var open []string
	for _, d := range t.DependsOn {
		if i := s.task(d); i < 0 || !s.Tasks[i].Status.finished() {
			open = append(open, d)
		}
	}
	return &grains.Error{Code: grains.CodeInvalidTransition,
		Message: fmt.Sprintf("order %s is %s: %s is not allowed: task %s was not requested, its dependencies are not done: %s",
			s.ID, s.Status, command, t.TaskID, strings.Join(open, ", ")),
		Violations: []grains.Violation{{Pointer: "/taskId", Code: ViolationDependenciesPending,
			Message: "the task's dependencies are not done"}}}
}

// finished reports whether a task lets its dependents proceed.
func (ts TaskStatus) finished() bool { return ts == TaskStatusDone || ts == TaskStatusSkipped }

func decideCompleteTask(s State, c CompleteTask, env grains.Env) ([]grains.Event, error) {
	i, err := reportedTask(s, CmdCompleteTask, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	switch s.Tasks[i].Status {
	case TaskStatusDone:
		return nil, nil // result delivered again
	case TaskStatusFailed:
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCompleteTask, "task "+c.TaskID+" already failed")
	case TaskStatusSkipped:
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCompleteTask, "task "+c.TaskID+" was skipped")
	case TaskStatusSuperseded:
		return nil, superseded(s, CmdCompleteTask, s.Tasks[i])
	}
	if !s.live() {
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCompleteTask, "")
	}
	if s.Tasks[i].Status == TaskStatusWaiting {
		return nil, dependenciesPending(s, CmdCompleteTask, s.Tasks[i])
	}
	now := env.Now.UTC()
	b := batch{s: s}
	b.resolveCases(c.TaskID, ResolutionCompletedByWorker, env.Actor, "", now)
	b.add(TaskCompleted{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: c.TaskID, Result: c.Result, CompletedAt: now})
	b.proceed(now)
	b.arm(now)
	return b.evs, nil
}

// resolveCases closes the active cases on task id.
func (b *batch) resolveCases(taskID, resolution, by, reason string, now time.Time) {
	for _, ci := range b.s.activeCases(taskID) {
		b.add(FalloutResolved{OrderID: b.s.ID, QuoteID: b.s.QuoteID, CaseID: b.s.Fallout[ci].ID, CaseStatus: CaseResolved,
			Resolution: resolution, ResolvedBy: by, Reason: reason, ResolvedAt: now})
	}
}

// causeOf is a failure's cause, defaulted for workers that send none.
func (c FailTask) causeOf() Cause {
	switch {
	case c.Cause != "":
		return c.Cause
	case c.Reason == ReasonRetriesExhausted:
		return CauseRetriesExhausted
	}
	return CauseBusinessRejection
}

// ReasonRetriesExhausted is the failTask reason of a worker that ran out of
// attempts.
const ReasonRetriesExhausted = "retries exhausted"

func decideFailTask(s State, c FailTask, env grains.Env) ([]grains.Event, error) {
	i, err := reportedTask(s, CmdFailTask, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	switch s.Tasks[i].Status {
	case TaskStatusFailed:
		return nil, nil // failure delivered again
	case TaskStatusDone, TaskStatusSkipped:
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdFailTask, "task "+c.TaskID+" is already "+string(s.Tasks[i].Status))
	case TaskStatusSuperseded:
		return nil, superseded(s, CmdFailTask, s.Tasks[i])
	}
	if !s.live() {
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdFailTask, "")
	}
	if s.Tasks[i].Status == TaskStatusWaiting {
		return nil, dependenciesPending(s, CmdFailTask, s.Tasks[i])
	}
	now := env.Now.UTC()
	cause := c.causeOf()
	b := batch{s: s}
	b.add(TaskFailed{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: c.TaskID, Reason: c.Reason, FailedAt: now, Cause: cause})
	// A forward task that fails while the order is being cancelled, or
	// after an amendment retired it, needs nobody: the cancellation or the
	// amendment undoes what may exist.
	if (!s.cancelling() && !s.Tasks[i].retired()) || s.Tasks[i].Compensates != "" {
		if len(s.activeCases(c.TaskID)) == 0 {
			b.add(FalloutOpened{OrderID: s.ID, QuoteID: s.QuoteID, CaseID: caseID(len(b.s.Fallout) + 1), TaskID: c.TaskID,
				Cause: cause, Owner: DefaultFalloutQueue, Reason: c.Reason, OpenedAt: now})
		}
	}
	switch {
	case s.Tasks[i].retired():
		b.closeRetiredCases(c.TaskID, env.Actor, c.Reason, now)
	case s.cancelling() && s.Tasks[i].Compensates == "":
		// A stuck task the cancel waited for: the cancel undoes what
		// may exist.
		b.closeCases(c.TaskID, ResolutionCancelled, env.Actor, c.Reason, now)
	}
	b.proceed(now)
	b.arm(now)
	return b.evs, nil
}

func decideCancel(s State, c Cancel, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdCancel, RoleSales, RoleOps); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdCancel)
	}
	if s.cancelling() {
		return nil, nil // the cancel request runs already
	}
	switch s.Status {
	case StatusAcknowledged, StatusInProgress, StatusHeld:
	default:
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdCancel, "")
	}
	if c.Reason == "" {
		return nil, grains.Violations{{Pointer: "/reason", Code: "required", Message: "reason is required"}}.Err(CmdCancel)
	}
	if past := s.pastNoReturn(); len(past) > 0 {
		return nil, grains.Errorf(grains.CodePointOfNoReturn,
			"order %s cannot be cancelled: past the point of no return at %s", s.ID, strings.Join(past, ", "))
	}
	now := env.Now.UTC()
	b := batch{s: s}
	b.add(CancellationRequested{OrderID: s.ID, QuoteID: s.QuoteID, CancelID: CancelID(s.ID), Reason: c.Reason,
		RequestedBy: env.Actor, RequestedAt: now})
	for _, fc := range s.Fallout {
		// A case on a compensation (an amendment's) stays open: the
		// cancel needs the same compensation and waits for it. So does a
		// case on a stuck task the cancel waits for (cancelAwaits): ops
		// settle its outcome with reconcileTask.
		if fc.Active() && !s.isCompensation(fc.TaskID) && !s.cancelAwaits(fc.TaskID) {
			b.add(FalloutResolved{OrderID: s.ID, QuoteID: s.QuoteID, CaseID: fc.ID, CaseStatus: CaseCancelled,
				Resolution: ResolutionCancelled, ResolvedBy: env.Actor, Reason: c.Reason, ResolvedAt: now})
		}
	}
	b.cancelStep(now)
	b.arm(now)
	return b.evs, nil
}

func unknownTask(s State, command, taskID string) error {
	return &grains.Error{Code: grains.CodeValidation,
		Message:    fmt.Sprintf("%s: order %s has no task %q", command, s.ID, taskID),
		Violations: []grains.Violation{{Pointer: "/taskId", Code: "unknown", Message: "no such task in this order"}}}
}

// applyEvent folds one event into s (see Apply). Events it does not know
// leave s unchanged.
func applyEvent(s State, ev grains.Event) State {
	switch e := ev.(type) {
	case Created:
		at := e.AcceptedAt
		s = State{
			ID: e.OrderID, Tenant: e.Tenant, QuoteID: e.QuoteID, Status: e.Status,
			CustomerID: e.CustomerID, CustomerName: e.CustomerName, Currency: e.Currency,
			Lines: grains.CloneLines(e.Lines), OneTimeTotal: e.OneTimeTotal, MonthlyTotal: e.MonthlyTotal,
			PriceHash: e.PriceHash, PlanVersion: e.PlanVersion, Items: cloneItems(e.Items), Tasks: []Task{},
			AcceptedBy: e.AcceptedBy, AcceptedAt: &at, CreatedAt: e.CreatedAt,
			TaskSLOSeconds: e.TaskSLOSeconds, CallbackTimeoutSeconds: e.CallbackTimeoutSeconds, Fallout: []FalloutCase{},
		}
		for _, t := range e.Tasks {
			s.Tasks = append(s.Tasks, Task{TaskID: t.ID, Type: t.Type, LineID: t.LineID, DependsOn: t.DependsOn,
				PointOfNoReturn: t.PointOfNoReturn, Compensation: t.Compensation, Status: TaskStatusWaiting})
		}
	case TaskRequested:
		s.Progress++
		if i := s.task(e.TaskID); i >= 0 {
			s = s.updateTask(e.TaskID, func(t *Task) {
				t.Status, t.Attempt, t.Awaiting = TaskStatusPending, e.Attempt, ""
				t.CallbackChecks, t.CallbackDue = 0, nil
			})
		} else {
			// A compensation, or a task of an order created before plans
			// were stored in OrderCreated.
			s.Tasks = append(cloneTasks(s.Tasks), Task{TaskID: e.TaskID, Type: e.TaskType, LineID: e.LineID,
				DependsOn: e.DependsOn, Status: TaskStatusPending, Attempt: e.Attempt, Compensates: e.Compensates})
		}
		if e.Compensates != "" && s.Cancellation != nil && s.Cancellation.State == CancelAcknowledged {
			c := *s.Cancellation
			c.State = CancelInProgress
			s.Cancellation = &c
		}
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskCompleted:
		s.Progress++
		seq := s.Progress
		s = s.updateTask(e.TaskID, func(t *Task) {
			t.Status, t.Result, t.DoneSeq, t.Awaiting, t.CallbackDue = TaskStatusDone, e.Result, seq, "", nil
			t.CompletedBy, t.Evidence = e.CompletedBy, e.Evidence
		})
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskFailed:
		s.Progress++
		seq := s.Progress
		s = s.updateTask(e.TaskID, func(t *Task) {
			t.Status, t.Reason, t.DoneSeq, t.Awaiting, t.CallbackDue = TaskStatusFailed, e.Reason, seq, "", nil
			if e.Cause != "" {
				t.Outcome = causeOutcome(e.Cause)
			}
		})
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskSkipped:
		s.Progress++
		seq := s.Progress
		s = s.updateTask(e.TaskID, func(t *Task) {
			t.Status, t.DoneSeq, t.Awaiting, t.CompletedBy, t.CallbackDue = TaskStatusSkipped, seq, "", e.SkippedBy, nil
		})
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskReconciled:
		s = s.updateTask(e.TaskID, func(t *Task) {
			t.Status, t.Outcome, t.Evidence, t.Awaiting, t.CallbackDue = TaskStatusFailed, OutcomeFailed, e.Evidence, "", nil
		})
		s.Status = e.Status
		s = s.rollUpItems()
	case TaskAwaiting, TaskQueryRequested:
		s = applyCallback(s, ev)
	case FalloutOpened:
		s.Fallout = append(cloneCases(s.Fallout), FalloutCase{ID: e.CaseID, OrderID: e.OrderID, TaskID: e.TaskID,
			Cause: e.Cause, Status: CaseOpen, Owner: e.Owner, Reason: e.Reason, OpenedAt: e.OpenedAt})
		s.Status = e.Status
	case FalloutAssigned:
		s.Fallout = cloneCases(s.Fallout)
		if i := s.fallout(e.CaseID); i >= 0 {
			c := &s.Fallout[i]
			c.Status, c.Owner, c.AssignedAt = CaseAssigned, e.Owner, timePtr(e.AssignedAt)
			if e.Note != "" {
				c.Notes = append(c.Notes, Note{At: e.AssignedAt, By: e.AssignedBy, Text: e.Note})
			}
		}
		s.Status = e.Status
	case FalloutResolved:
		s.Fallout = cloneCases(s.Fallout)
		if i := s.fallout(e.CaseID); i >= 0 {
			c := &s.Fallout[i]
			c.Status, c.Resolution, c.ResolvedBy, c.ResolvedAt = e.CaseStatus, e.Resolution, e.ResolvedBy, timePtr(e.ResolvedAt)
			if e.Reason != "" {
				c.Notes = append(c.Notes, Note{At: e.ResolvedAt, By: e.ResolvedBy, Text: e.Reason})
			}
		}
		s.Status = e.Status
	case Amended:
		s = s.applyAmended(e)
	case CancellationRequested:
		s.Cancellation = &Cancellation{ID: e.CancelID, State: CancelAcknowledged, Reason: e.Reason,
			RequestedBy: e.RequestedBy, RequestedAt: e.RequestedAt}
		s.Status = e.Status
	case Completed:
		s.Status, s.CompletedAt = e.Status, timePtr(e.CompletedAt)
	case Failed:
		s.Status, s.FailureReason, s.FailedAt = e.Status, e.Reason, timePtr(e.FailedAt)
	case Cancelled:
		s.Status, s.CancelReason, s.CancelledBy, s.CancelledAt = e.Status, e.Reason, e.CancelledBy, timePtr(e.CancelledAt)
		if s.Cancellation != nil {
			c := *s.Cancellation
			c.State, c.CompletedAt = CancelDone, timePtr(e.CancelledAt)
			s.Cancellation = &c
		}
		s.Items = cloneItems(s.Items)
		for i, it := range s.Items {
			if it.State != StatusCompleted && it.State != StatusPartial {
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
