package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/plan"
)

// Amendment (ADR 0023): a change order is a new intent over the baseline.
// The amend command carries the full desired set of lines; the grain diffs
// it against the order's current lines (the baseline: the quote's lines as
// changed by earlier amendments) and re-plans only the tasks of the lines
// that changed, on the order's pinned plan version:
//
//   - add: a new line (or one an earlier amendment deleted) gets its line
//     tasks; a waiting order task (notify) now also waits for them;
//   - modify (offering, quantity, characteristics or parent changed): the
//     line's tasks are retired and redone as a new generation of tasks, ids
//     "<orderId>/<lineId>@<n>/<type>" (plan.LineTaskIDAt), so that the
//     external idempotency key of a redone task differs from the original's;
//   - delete: the line's tasks are retired;
//   - noChange: untouched.
//
// A retired task (Task.SupersededBy, the amendment's number) is never
// requested again: a waiting one becomes superseded; a requested one is
// waited for; a done one (or a failed one whose outcome is unknown) is
// undone by its compensation, latest done first, one at a time, with the
// same compensation tasks a cancel uses. The new generation of a modified
// line is requested once its line is unwound (no retired task requested,
// every compensation done). Nothing is deleted: retired tasks, their
// results and the order's amendments stay in the state.
//
// The amend is refused, the order unchanged:
//
//   - with point_of_no_return (violations at /lines/<i> for a modified line,
//     /lines for a deleted one) when a task it would retire may have an
//     effect that cannot be undone: a point-of-no-return task that is done,
//     requested, or failed with an unknown outcome, or any such task without
//     a compensation; in plan version 1 the one order task covers every
//     line, so any change once it was requested;
//   - with invalid_transition when the order is finished, cancelled or
//     being cancelled;
//   - with validation_failed for a malformed intent, or one where a line's
//     parent (given or kept) is no line of the intent.
//
// An amend whose intent equals the baseline changes nothing (no events).
// Active fallout cases on retired tasks that failed are closed (status
// cancelled, resolution "amended"); a case on a retired task still
// requested stays open, for ops to learn its outcome, and closes the same
// way once the task fails or ops reconcile it as absent (a late success or a
// manual completion resolves it, and the effect is undone).
//
// Lines are not repriced: a modified or added line carries no prices, and
// the order keeps the quote's totals and price hash.

// CmdAmend is the amend command's wire name.
const CmdAmend = "amend"

// EvAmended is the amendment event's wire name.
const EvAmended = "OrderAmended"

// TaskStatusSuperseded: an amendment retired the task before it was
// requested; it never will be.
const TaskStatusSuperseded TaskStatus = "superseded"

// ResolutionAmended closes a fallout case whose task an amendment retired.
const ResolutionAmended = "amended"

// ViolationPastPointOfNoReturn is the violation code of an amended line
// whose tasks cannot be redone or undone.
const ViolationPastPointOfNoReturn = "past_point_of_no_return"

// Amend is a change order: Lines is the full desired set of lines.
type Amend struct {
	Reason string      `json:"reason"`
	Lines  []AmendLine `json:"lines"`
}

// AmendLine is one desired line. Characteristics absent keep the line's
// current ones; present, they replace them. Name and ParentLineID absent
// keep the current ones.
type AmendLine struct {
	LineID          string         `json:"lineId"`
	OfferingID      string         `json:"offeringId"`
	Quantity        int            `json:"quantity"`
	Name            string         `json:"name,omitempty"`
	Characteristics map[string]any `json:"characteristics,omitempty"`
	ParentLineID    string         `json:"parentLineId,omitempty"`
}

// CommandName implements grains.Command.
func (Amend) CommandName() string { return CmdAmend }

// Amendment is one accepted change order, as the state keeps it.
type Amendment struct {
	Number  int          `json:"number"`
	Reason  string       `json:"reason"`
	By      string       `json:"by"`
	At      time.Time    `json:"at"`
	Changes []ItemChange `json:"changes"`
}

// ItemChange is one item of an amendment's diff. Before is the line as it
// was (modify, delete), After as it is now (add, modify); Superseded lists
// the tasks the change retired, Added the tasks it planned.
type ItemChange struct {
	LineID     string       `json:"lineId"`
	Action     Action       `json:"action"`
	Before     *grains.Line `json:"before,omitempty"`
	After      *grains.Line `json:"after,omitempty"`
	Superseded []string     `json:"superseded,omitempty"`
	Added      []string     `json:"added,omitempty"`
}

// DependencyChange gives a waiting order task its new dependencies.
type DependencyChange struct {
	TaskID    string   `json:"taskId"`
	DependsOn []string `json:"dependsOn"`
}

// Amended: an amendment was accepted. Lines and Items are the order's lines
// and items after it; Tasks the tasks it planned (waiting), Superseded the
// ids of the tasks it retired, Dependencies the new dependencies of waiting
// order tasks.
type Amended struct {
	OrderID      string             `json:"orderId"`
	QuoteID      string             `json:"quoteId"`
	Status       Status             `json:"status"`
	Amendment    Amendment          `json:"amendment"`
	Lines        []grains.Line      `json:"lines"`
	Items        []Item             `json:"items"`
	Tasks        []plan.Task        `json:"tasks,omitempty"`
	Superseded   []string           `json:"superseded,omitempty"`
	Dependencies []DependencyChange `json:"dependencies,omitempty"`
}

// EventName implements grains.Event.
func (Amended) EventName() string { return EvAmended }

func decodeAmend(payload []byte) (grains.Command, error) {
	var c Amend
	if err := grains.DecodePayload(CmdAmend, payload, &c, true); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func (c Amend) validate() error {
	var v grains.Violations
	if strings.TrimSpace(c.Reason) == "" {
		v.Add("/reason", "required", "reason is required")
	}
	if len(c.Lines) == 0 {
		v.Add("/lines", "required", "an order needs at least one line; cancel the order instead")
	}
	seen := map[string]bool{}
	for i, l := range c.Lines {
		at := "/lines/" + strconv.Itoa(i)
		switch {
		case l.LineID == "":
			v.Add(at+"/lineId", "required", "lineId is required")
		case strings.ContainsAny(l.LineID, "/"+plan.GenerationSeparator):
			v.Add(at+"/lineId", "invalid", "lineId must not contain / or "+plan.GenerationSeparator)
		case seen[l.LineID]:
			v.Add(at+"/lineId", "duplicate", "lineId "+l.LineID+" appears twice")
		}
		seen[l.LineID] = true
		if l.OfferingID == "" {
			v.Add(at+"/offeringId", "required", "offeringId is required")
		}
		if l.Quantity < 1 {
			v.Add(at+"/quantity", "min", "quantity must be at least 1")
		}
		if l.ParentLineID == l.LineID && l.LineID != "" {
			v.Add(at+"/parentLineId", "invalid", "a line cannot be its own parent")
		}
		for _, name := range sortedKeys(l.Characteristics) {
			switch l.Characteristics[name].(type) {
			case string, float64, bool:
			default:
				v.Add(at+"/characteristics/"+pointerEscaper.Replace(name), catalog.CodeValueType,
					"a characteristic value is a JSON string, number or boolean")
			}
		}
	}
	return v.Err(CmdAmend)
}

// pointerEscaper escapes a JSON pointer token (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parentsKnown checks that every amended line's parent (as given, or kept
// from the current line) is a line of the amended order, lines.
func (c Amend) parentsKnown(lines []grains.Line) error {
	index := map[string]int{}
	for i, l := range c.Lines {
		index[l.LineID] = i
	}
	var v grains.Violations
	for _, l := range lines {
		if l.ParentLineID == "" {
			continue
		}
		if _, ok := index[l.ParentLineID]; !ok {
			v.Add("/lines/"+strconv.Itoa(index[l.LineID])+"/parentLineId", "unknown",
				fmt.Sprintf("line %s has no parent line %s in the amended order", l.LineID, l.ParentLineID))
		}
	}
	return v.Err(CmdAmend)
}

// amendable reports whether the order's status lets it be amended.
func (s State) amendable() bool {
	if s.cancelling() {
		return false
	}
	switch s.Status {
	case StatusAcknowledged, StatusInProgress, StatusHeld:
		return true
	}
	return false
}

func (d decider) decideAmend(s State, c Amend, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdAmend, RoleSales, RoleOps); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdAmend)
	}
	if !s.amendable() {
		return nil, grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), CmdAmend, "")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	number := len(s.Amendments) + 1
	lines, items, changes := s.diff(c)
	changed := false
	for _, ch := range changes {
		changed = changed || ch.Action != ActionNoChange
	}
	if !changed {
		return nil, nil // the intent is the baseline: nothing to do
	}
	if err := c.parentsKnown(lines); err != nil {
		return nil, err
	}
	gens := map[string]int{}
	for _, it := range items {
		gens[it.ID] = it.Generation
	}
	tasks, err := d.plans.DecomposeAt(s.ID, s.PlanVersion, lines, gens)
	switch {
	case errors.Is(err, plan.ErrUnknownVersion):
		return nil, grains.Errorf(grains.CodeInternal, "amend: order %s pins plan version %d, which this node does not know", s.ID, s.PlanVersion)
	case err != nil:
		return nil, &grains.Error{Code: grains.CodeValidation, Message: "amend: " + err.Error()}
	}
	ev := Amended{OrderID: s.ID, QuoteID: s.QuoteID, Lines: lines, Items: items}
	if err := s.replan(&ev, tasks, changes, c); err != nil {
		return nil, err
	}
	now := env.Now.UTC()
	ev.Amendment = Amendment{Number: number, Reason: c.Reason, By: env.Actor, At: now, Changes: changes}

	b := batch{s: s}
	after := Apply(b.s, ev)
	ev.Status, ev.Items = after.liveStatus(), after.Items // items as rolled up after it
	b.addAsIs(ev)
	retired := map[string]bool{}
	for _, id := range ev.Superseded {
		retired[id] = true
	}
	for _, fc := range s.Fallout {
		if fc.Active() && retired[fc.TaskID] && b.s.Tasks[b.s.task(fc.TaskID)].Status == TaskStatusFailed {
			b.add(FalloutResolved{OrderID: s.ID, QuoteID: s.QuoteID, CaseID: fc.ID, CaseStatus: CaseCancelled,
				Resolution: ResolutionAmended, ResolvedBy: env.Actor, Reason: c.Reason, ResolvedAt: now})
		}
	}
	b.proceed(now)
	b.arm(now)
	return b.evs, nil
}

// diff computes the order's lines and items after the amendment, and the
// item diff against the current lines: one change per current line (in
// line order), then one per added line (in the command's order).
func (s State) diff(c Amend) ([]grains.Line, []Item, []ItemChange) {
	base := map[string]grains.Line{}
	for _, l := range s.Lines {
		base[l.LineID] = l
	}
	want := map[string]int{}
	for i, l := range c.Lines {
		want[l.LineID] = i
	}
	items := cloneItems(s.Items)
	item := func(id string) int {
		for i, it := range items {
			if it.ID == id {
				return i
			}
		}
		return -1
	}
	var lines []grains.Line
	var changes, added []ItemChange
	for _, old := range s.Lines {
		i, kept := want[old.LineID]
		ii := item(old.LineID)
		if !kept {
			before := cloneLine(old)
			changes = append(changes, ItemChange{LineID: old.LineID, Action: ActionDelete, Before: &before})
			if ii >= 0 {
				items[ii].Action = ActionDelete
			}
			continue
		}
		next := amendedLine(old, c.Lines[i])
		if sameLine(old, next) {
			lines = append(lines, old)
			changes = append(changes, ItemChange{LineID: old.LineID, Action: ActionNoChange})
			if ii >= 0 {
				items[ii].Action = ActionNoChange
			}
			continue
		}
		before, after := cloneLine(old), cloneLine(next)
		lines = append(lines, next)
		changes = append(changes, ItemChange{LineID: old.LineID, Action: ActionModify, Before: &before, After: &after})
		if ii >= 0 {
			it := &items[ii]
			it.Action, it.OfferingID, it.Quantity, it.Generation = ActionModify, next.OfferingID, next.Quantity, max(it.Generation, 1)+1
		}
	}
	for _, l := range c.Lines {
		if _, ok := base[l.LineID]; ok {
			continue
		}
		next := amendedLine(grains.Line{LineID: l.LineID}, l)
		after := cloneLine(next)
		lines = append(lines, next)
		added = append(added, ItemChange{LineID: l.LineID, Action: ActionAdd, After: &after})
		if ii := item(l.LineID); ii >= 0 {
			// Deleted by an earlier amendment and added again: a new
			// generation, so that no task id is reused.
			it := &items[ii]
			it.Action, it.OfferingID, it.Quantity, it.Generation = ActionAdd, next.OfferingID, next.Quantity, max(it.Generation, 1)+1
		} else {
			items = append(items, Item{ID: l.LineID, Action: ActionAdd, State: StatusAcknowledged, OfferingID: next.OfferingID,
				Quantity: next.Quantity})
		}
	}
	return lines, items, append(changes, added...)
}

// amendedLine is old as the desired line d asks: a line whose offering,
// quantity, characteristics or parent change loses its prices (amendments
// are not repriced).
func amendedLine(old grains.Line, d AmendLine) grains.Line {
	next := cloneLine(old)
	next.OfferingID, next.Quantity = d.OfferingID, d.Quantity
	if d.Characteristics != nil {
		next.Characteristics = grains.CloneValues(d.Characteristics)
	}
	if d.ParentLineID != "" {
		next.ParentLineID = d.ParentLineID
	}
	if d.Name != "" {
		next.Name = d.Name
	}
	if !sameLine(old, next) {
		next.UnitOneTime, next.UnitMonthly, next.OneTimeTotal, next.MonthlyTotal = "", "", "", ""
	}
	return next
}

// sameLine reports whether a and b ask for the same fulfilment: offering,
// quantity, characteristics and parent (names and prices do not count).
func sameLine(a, b grains.Line) bool {
	if a.OfferingID != b.OfferingID || a.Quantity != b.Quantity || a.ParentLineID != b.ParentLineID {
		return false
	}
	if len(a.Characteristics) == 0 && len(b.Characteristics) == 0 {
		return true
	}
	ja, errA := json.Marshal(a.Characteristics) // sorted keys: canonical
	jb, errB := json.Marshal(b.Characteristics)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func cloneLine(l grains.Line) grains.Line {
	l.Characteristics = grains.CloneValues(l.Characteristics)
	return l
}

// replan fills ev's tasks from the decomposition of the amended lines: new
// task ids are planned, current tasks missing from it are retired (after
// the point-of-no-return check), waiting order tasks get their new
// dependencies.
func (s State) replan(ev *Amended, tasks []plan.Task, changes []ItemChange, c Amend) error {
	planned := map[string]plan.Task{}
	for _, t := range tasks {
		planned[t.ID] = t
	}
	action := map[string]Action{}
	for _, ch := range changes {
		action[ch.LineID] = ch.Action
	}
	var v grains.Violations
	index := map[string]int{}
	for i, l := range c.Lines {
		index[l.LineID] = i
	}
	pointer := func(lineID string) string {
		if i, ok := index[lineID]; ok {
			return "/lines/" + strconv.Itoa(i)
		}
		return "/lines"
	}
	change := map[string]int{}
	for i, ch := range changes {
		change[ch.LineID] = i
	}
	// Retire the current tasks the new decomposition does not have.
	lineTasks := map[string]bool{}
	for _, t := range s.Tasks {
		if t.Compensates != "" || t.retired() {
			continue
		}
		if t.LineID != "" {
			lineTasks[t.LineID] = true
		}
		if _, ok := planned[t.TaskID]; ok {
			continue
		}
		if t.LineID == "" || action[t.LineID] == ActionNoChange {
			return grains.Errorf(grains.CodeInternal, "amend: order %s: plan version %d no longer has task %s", s.ID, s.PlanVersion, t.TaskID)
		}
		if why := t.irreversible(); why != "" {
			v.Add(pointer(t.LineID), ViolationPastPointOfNoReturn,
				fmt.Sprintf("line %s (%s): task %s %s", t.LineID, action[t.LineID], t.TaskID, why))
			continue
		}
		ev.Superseded = append(ev.Superseded, t.TaskID)
		ch := &changes[change[t.LineID]]
		ch.Superseded = append(ch.Superseded, t.TaskID)
	}
	// Lines without line tasks (plan version 1) are fulfilled by the order
	// tasks, which cover every line: a change reaches them.
	orderTasksCover := false
	for _, ch := range changes {
		if ch.Action != ActionNoChange && !lineTasks[ch.LineID] && !hasLineTask(tasks, ch.LineID) {
			orderTasksCover = true
		}
	}
	for _, pt := range tasks {
		i := s.task(pt.ID)
		switch {
		case i < 0 && pt.LineID == "":
			return grains.Errorf(grains.CodeInternal, "amend: order %s: plan version %d now has order task %s", s.ID, s.PlanVersion, pt.ID)
		case i < 0:
			if a := action[pt.LineID]; a != ActionAdd && a != ActionModify {
				return grains.Errorf(grains.CodeInternal, "amend: order %s: plan version %d now has task %s of an unchanged line", s.ID, s.PlanVersion, pt.ID)
			}
			ev.Tasks = append(ev.Tasks, pt)
			ch := &changes[change[pt.LineID]]
			ch.Added = append(ch.Added, pt.ID)
		case pt.LineID == "":
			t := s.Tasks[i]
			if orderTasksCover && t.Status != TaskStatusWaiting {
				v.Add("/lines", ViolationPastPointOfNoReturn,
					fmt.Sprintf("order task %s covers every line and is already %s", t.TaskID, t.Status))
				continue
			}
			if t.Status == TaskStatusWaiting && !sameStrings(t.DependsOn, pt.DependsOn) {
				ev.Dependencies = append(ev.Dependencies, DependencyChange{TaskID: pt.ID, DependsOn: pt.DependsOn})
			}
		}
	}
	if len(v) > 0 {
		sort.SliceStable(v, func(i, j int) bool { return v[i].Pointer < v[j].Pointer })
		msgs := make([]string, len(v))
		for i, x := range v {
			msgs[i] = x.Message
		}
		return &grains.Error{Code: grains.CodePointOfNoReturn,
			Message:    fmt.Sprintf("order %s cannot be amended: %s", s.ID, strings.Join(msgs, "; ")),
			Violations: v}
	}
	return nil
}

func hasLineTask(tasks []plan.Task, lineID string) bool {
	for _, t := range tasks {
		if t.LineID == lineID {
			return true
		}
	}
	return false
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// superseded is the error for a command on a task an amendment retired
// that has nothing left to report or recover: only a retired task still
// requested may complete, fail or be recovered (its outcome decides what
// to undo).
func superseded(s State, command string, t Task) error {
	return grains.InvalidTransition(grains.KindOrder, s.ID, string(s.Status), command,
		fmt.Sprintf("task %s was retired by amendment %d", t.TaskID, t.SupersededBy))
}

// closeRetiredCases closes the active cases on a retired task whose
// outcome is now known not to need a person (it failed, or was reconciled
// absent): no recovery applies to it any more, and the amendment undoes
// what may exist.
func (b *batch) closeRetiredCases(taskID, by, reason string, now time.Time) {
	b.closeCases(taskID, ResolutionAmended, by, reason, now)
}

// closeCases cancels the active cases on task id with resolution: the
// task needs no person any more.
func (b *batch) closeCases(taskID, resolution, by, reason string, now time.Time) {
	for _, ci := range b.s.activeCases(taskID) {
		b.add(FalloutResolved{OrderID: b.s.ID, QuoteID: b.s.QuoteID, CaseID: b.s.Fallout[ci].ID, CaseStatus: CaseCancelled,
			Resolution: resolution, ResolvedBy: by, Reason: reason, ResolvedAt: now})
	}
}

// retired reports whether an amendment took t out of the plan.
func (t Task) retired() bool { return t.SupersededBy > 0 }

// irreversible says why retiring t could leave an effect that cannot be
// undone ("" when it cannot): its effect may exist (done, requested, or
// failed with an unknown outcome) and it is a point-of-no-return task or
// has no compensation.
func (t Task) irreversible() string {
	var state string
	switch {
	case t.Status == TaskStatusDone:
		state = "is done"
	case t.Status == TaskStatusPending:
		state = "is requested"
	case t.Status == TaskStatusFailed && t.Outcome == OutcomeUnknown:
		state = "has an unknown outcome"
	default:
		return ""
	}
	switch {
	case t.PointOfNoReturn:
		return state + ", past its point of no return"
	case t.Compensation == "":
		return state + " and has no compensation"
	}
	return ""
}

// applyAmended folds an Amended event.
func (s State) applyAmended(e Amended) State {
	s.Lines = grains.CloneLines(e.Lines)
	s.Items = cloneItems(e.Items)
	s.Tasks = cloneTasks(s.Tasks)
	n := e.Amendment.Number
	for _, id := range e.Superseded {
		if i := s.task(id); i >= 0 {
			t := &s.Tasks[i]
			t.SupersededBy = n
			if t.Status == TaskStatusWaiting {
				t.Status = TaskStatusSuperseded
			}
		}
	}
	for _, t := range e.Tasks {
		s.Tasks = append(s.Tasks, Task{TaskID: t.ID, Type: t.Type, LineID: t.LineID, DependsOn: t.DependsOn,
			PointOfNoReturn: t.PointOfNoReturn, Compensation: t.Compensation, Status: TaskStatusWaiting})
	}
	for _, d := range e.Dependencies {
		if i := s.task(d.TaskID); i >= 0 {
			s.Tasks[i].DependsOn = append([]string(nil), d.DependsOn...)
		}
	}
	a := e.Amendment
	a.Changes = append([]ItemChange(nil), a.Changes...)
	s.Amendments = append(append([]Amendment(nil), s.Amendments...), a)
	s.Status = e.Status
	return s.rollUpItems()
}

// needsUndo reports whether t's effect may exist and has a compensation.
func (t Task) needsUndo() bool {
	return t.Compensation != "" && (t.Status == TaskStatusDone || (t.Status == TaskStatusFailed && t.Outcome == OutcomeUnknown))
}

// unwinding reports whether the retired tasks of line lineID ("" for any
// line) are not yet undone, and whether one of their compensations failed:
// a retired task is still requested, or one whose effect may exist has no
// compensation done yet.
func (s State) unwinding(lineID string) (running, failed bool) {
	comp := map[string]TaskStatus{}
	for _, t := range s.Tasks {
		if t.Compensates != "" {
			comp[t.Compensates] = t.Status
		}
	}
	for _, t := range s.Tasks {
		if !t.retired() || t.Compensates != "" || (lineID != "" && t.LineID != lineID) {
			continue
		}
		if t.Status == TaskStatusPending {
			running = true
			continue
		}
		if !t.needsUndo() {
			continue
		}
		switch st, ok := comp[t.TaskID]; {
		case !ok, st == TaskStatusPending, st == TaskStatusWaiting:
			running = true
		case st == TaskStatusFailed:
			running, failed = true, true
		}
	}
	return running, failed
}

// unwindStep requests the next compensation of a retired task, latest done
// first, one at a time; a line's compensations wait while a retired task of
// the line is still requested.
func (b *batch) unwindStep() {
	s := b.s
	if s.compensationRunning() {
		return
	}
	for _, t := range s.toCompensate() {
		if !t.retired() || s.retiredRequested(t.LineID) {
			continue
		}
		b.add(TaskRequested{OrderID: s.ID, QuoteID: s.QuoteID, TaskID: compensationTaskID(t.TaskID, t.Compensation),
			TaskType: t.Compensation, Attempt: 1, Lines: s.linesOf(t), LineID: t.LineID, Compensates: t.TaskID})
		return
	}
}

// retiredRequested reports whether a retired forward task of lineID is
// still requested.
func (s State) retiredRequested(lineID string) bool {
	for _, t := range s.Tasks {
		if t.retired() && t.Compensates == "" && t.LineID == lineID && t.Status == TaskStatusPending {
			return true
		}
	}
	return false
}

// blockedByUnwind reports whether t, a task of a line's current
// generation, must wait for the line's retired tasks to be undone.
func (s State) blockedByUnwind(t Task) bool {
	if t.LineID == "" || t.retired() || t.Compensates != "" {
		return false
	}
	running, _ := s.unwinding(t.LineID)
	return running
}

// amendedItemState is the state of an item an amendment changed while its
// retired tasks are undone (inProgress, failed when a compensation failed),
// and of a deleted item (completed once undone); ok is false when the
// ordinary roll-up applies.
func (s State) amendedItemState(it Item) (Status, bool) {
	if len(s.Amendments) == 0 {
		return "", false
	}
	running, failed := s.unwinding(it.ID)
	switch {
	case failed:
		return StatusFailed, true
	case running:
		return StatusInProgress, true
	case it.Action == ActionDelete:
		return StatusCompleted, true
	}
	return "", false
}

// formerLine returns the line a retired task (or the compensation of one)
// was planned for, as the amendment that retired it found it.
func (s State) formerLine(t Task) (grains.Line, bool) {
	if t.Compensates != "" {
		if i := s.task(t.Compensates); i >= 0 {
			t = s.Tasks[i]
		}
	}
	if !t.retired() || t.SupersededBy > len(s.Amendments) {
		return grains.Line{}, false
	}
	for _, ch := range s.Amendments[t.SupersededBy-1].Changes {
		if ch.LineID == t.LineID && ch.Before != nil {
			return cloneLine(*ch.Before), true
		}
	}
	return grains.Line{}, false
}
