package order

import (
	"fmt"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// recoverable checks what every manual recovery command needs: role ops, an
// order that runs, and a task that failed or is stuck (requested, with an
// active fallout case). It returns the task's index.
func recoverable(s State, command, taskID string, env grains.Env) (int, error) {
	i, err := taskFor(s, command, taskID, env, RoleOps)
	if err != nil {
		return -1, err
	}
	if !s.live() {
		return -1, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), command, "")
	}
	t := s.Tasks[i]
	if s.cancelling() && t.Compensates == "" && (command != CmdReconcileTask || !s.cancelAwaits(taskID)) {
		return -1, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), command,
			"the order is being cancelled: only its compensations can be recovered, and a stuck task it waits for reconciled (reconcileTask)")
	}
	if t.retired() && t.Status != TaskStatusPending {
		return -1, superseded(s, command, t)
	}
	stuck := t.Status == TaskStatusPending && len(s.activeCases(taskID)) > 0
	if t.Status != TaskStatusFailed && !stuck {
		return -1, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), command,
			fmt.Sprintf("task %s is %s: only a failed task, or a requested one with a fallout case, can be recovered", taskID, t.Status))
	}
	return i, nil
}

// lastOutcome is what is known of a task's last attempt: unknown while it
// is still requested, else its recorded outcome.
func (t Task) lastOutcome() Outcome {
	if t.Status == TaskStatusPending {
		return OutcomeUnknown
	}
	return t.Outcome
}

// billingUnknown refuses to complete or skip a billing task whose outcome is
// unknown: the customer may or may not be charged.
func billingUnknown(s State, command string, t Task) error {
	if t.Type == plan.TypeActivateBilling && t.lastOutcome() == OutcomeUnknown {
		return grains.Errorf(grains.CodeBillingOutcomeUnknown,
			"%s: order %s: the outcome of billing task %s is unknown; retry it (the billing system dedupes) or reconcile it first",
			command, s.ID, t.TaskID)
	}
	return nil
}

func decideRetryTask(s State, c RetryTask, env grains.Env) ([]grains.Event, error) {
	i, err := recoverable(s, CmdRetryTask, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	t := s.Tasks[i]
	if t.Type == plan.TypeReserveInventory && t.lastOutcome() == OutcomeUnknown {
		return nil, grains.Errorf(grains.CodeReconcileFirst,
			"retryTask: order %s: the outcome of reservation %s is unknown; reconcile it first (reconcileTask)", s.ID, t.TaskID)
	}
	now := env.Now.UTC()
	b := batch{s: s}
	b.resolveCases(t.TaskID, ResolutionRetried, env.Actor, c.Reason, now)
	var deps []string
	if len(t.DependsOn) > 0 {
		deps = append(deps, t.DependsOn...)
	}
	b.add(TaskRequested{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: t.TaskID, TaskType: t.Type, Attempt: t.Attempt + 1,
		Lines: s.linesOf(t), LineID: t.LineID, DependsOn: deps, Compensates: t.Compensates, RequestedBy: env.Actor, Reason: c.Reason})
	b.arm(now)
	return b.evs, nil
}

func decideCompleteManually(s State, taskID, reason, evidence, command string, env grains.Env) ([]grains.Event, error) {
	i, err := recoverable(s, command, taskID, env)
	if err != nil {
		return nil, err
	}
	if err := billingUnknown(s, command, s.Tasks[i]); err != nil {
		return nil, err
	}
	now := env.Now.UTC()
	b := batch{s: s}
	b.resolveCases(taskID, ResolutionCompletedManually, env.Actor, reason, now)
	b.add(TaskCompleted{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: taskID, CompletedAt: now,
		CompletedBy: env.Actor, Reason: reason, Evidence: evidence})
	b.proceed(now)
	b.arm(now)
	return b.evs, nil
}

func decideSkipTask(s State, c SkipTask, env grains.Env) ([]grains.Event, error) {
	i, err := recoverable(s, CmdSkipTask, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	if err := billingUnknown(s, CmdSkipTask, s.Tasks[i]); err != nil {
		return nil, err
	}
	if t := s.Tasks[i]; t.retired() {
		// Only a requested retired task gets here: its effect may exist
		// and the amendment must undo it, which a skip would forget.
		return nil, grains.Errorf(grains.CodeReconcileFirst,
			"skipTask: order %s: task %s was retired by amendment %d and its outcome is unknown; reconcile it (reconcileTask) or complete it with evidence, so that what exists is undone",
			s.ID, t.TaskID, t.SupersededBy)
	}
	now := env.Now.UTC()
	b := batch{s: s}
	b.resolveCases(c.TaskID, ResolutionSkipped, env.Actor, c.Reason, now)
	b.add(TaskSkipped{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: c.TaskID, SkippedBy: env.Actor, Reason: c.Reason, SkippedAt: now})
	b.proceed(now)
	b.arm(now)
	return b.evs, nil
}

func decideReconcileTask(s State, c ReconcileTask, env grains.Env) ([]grains.Event, error) {
	if c.Effect == EffectPresent {
		return decideCompleteManually(s, c.TaskID, c.Reason, c.Evidence, CmdReconcileTask, env)
	}
	i, err := recoverable(s, CmdReconcileTask, c.TaskID, env)
	if err != nil {
		return nil, err
	}
	if s.Tasks[i].Status == TaskStatusFailed && s.Tasks[i].Outcome != OutcomeUnknown {
		return nil, nil // its outcome is known already
	}
	now := env.Now.UTC()
	rec := TaskReconciled{OrderID: s.ID, QuoteID: s.QuoteID, Status: s.Status, TaskID: c.TaskID,
		Effect: c.Effect, ReconciledBy: env.Actor, Reason: c.Reason, Evidence: c.Evidence, ReconciledAt: now}
	if s.cancelling() {
		// A stuck task the cancel waited for has no effect: nothing to
		// undo, and the cancel moves on.
		b := batch{s: s}
		b.add(withCallbackCancel(s, rec))
		b.resolveCases(c.TaskID, ResolutionReconciled, env.Actor, c.Reason, now)
		b.proceed(now)
		b.arm(now)
		return b.evs, nil
	}
	if !s.Tasks[i].retired() {
		return []grains.Event{withCallbackCancel(s, rec)}, nil
	}
	// A retired task found absent has nothing to undo and will not be
	// retried: its case closes and its line moves on.
	b := batch{s: s}
	b.add(rec)
	b.closeRetiredCases(c.TaskID, env.Actor, c.Reason, now)
	b.proceed(now)
	b.arm(now)
	return b.evs, nil
}

func decideAssignFallout(s State, c AssignFallout, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdAssignFallout, RoleOps); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdAssignFallout)
	}
	i := s.fallout(c.CaseID)
	if i < 0 {
		return nil, &grains.Error{Code: grains.CodeValidation,
			Message:    fmt.Sprintf("%s: order %s has no fallout case %q", CmdAssignFallout, s.ID, c.CaseID),
			Violations: []grains.Violation{{Pointer: "/caseId", Code: "unknown", Message: "no such fallout case in this order"}}}
	}
	fc := s.Fallout[i]
	if !fc.Active() {
		return nil, &grains.Error{Code: grains.CodeInvalidTransition,
			Message: fmt.Sprintf("fallout case %s of order %s is %s: %s is not allowed", fc.ID, s.ID, fc.Status, CmdAssignFallout)}
	}
	if fc.Status == CaseAssigned && fc.Owner == c.Owner && c.Note == "" {
		return nil, nil
	}
	return []grains.Event{FalloutAssigned{OrderID: s.ID, QuoteID: s.QuoteID, Status: s.Status, CaseID: fc.ID,
		Owner: c.Owner, AssignedBy: env.Actor, Note: c.Note, AssignedAt: env.Now.UTC()}}, nil
}

// decideCheckProgress is the stuck timer firing: when the order made no
// progress since the timer was armed, every requested task without an
// active case gets one, its cause classified.
func decideCheckProgress(s State, c CheckProgress, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdCheckProgress, RoleSystem); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdCheckProgress)
	}
	if !s.live() || s.Progress != c.Progress {
		return nil, nil // finished, or progressed since: a stale timer
	}
	now := env.Now.UTC()
	b := batch{s: s}
	for _, t := range s.Tasks {
		if t.Status != TaskStatusPending || len(s.activeCases(t.TaskID)) > 0 {
			continue
		}
		cause, why := stuckCause(t)
		b.add(FalloutOpened{OrderID: s.ID, QuoteID: s.QuoteID, CaseID: caseID(len(b.s.Fallout) + 1), TaskID: t.TaskID,
			Cause: cause, Owner: DefaultFalloutQueue, Reason: fmt.Sprintf("%s: no progress within %s", why, s.taskSLO()), OpenedAt: now})
	}
	return b.evs, nil
}

// stuckCause classifies a requested task that made no progress in time.
func stuckCause(t Task) (Cause, string) {
	switch {
	case t.Awaiting == AwaitingCallback:
		return CauseAwaitingCallback, "the external system accepted the task; its callback did not come"
	case t.Awaiting == AwaitingQuery:
		return CauseAwaitingCallback, "the external system accepted the task; its callback did not come and the query about it got no answer"
	case t.Outcome != "":
		return CauseRetriesExhausted, fmt.Sprintf("attempt %d after an earlier %s attempt", t.Attempt, t.Outcome)
	}
	return CauseWorkerSilent, "no worker reported on the task"
}
