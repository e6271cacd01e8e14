package order

import (
	"strconv"
	"time"
)

// Cause classifies why a fallout case was opened.
type Cause string

// Fallout causes. The first three come from a task that failed for good
// (failTask's cause); the last two from the stuck-order timer.
const (
	CauseRetriesExhausted  Cause = "retries_exhausted"
	CauseBusinessRejection Cause = "business_rejection"
	CauseUnknownOutcome    Cause = "unknown_outcome"
	CauseAwaitingCallback  Cause = "awaiting_callback"
	CauseWorkerSilent      Cause = "worker_silent"
)

// CaseStatus is the state of a fallout case:
//
//	open --assignFallout--> assigned --assignFallout--> assigned
//	open|assigned --retryTask|completeTaskManually|skipTask|reconcileTask(present)|completeTask--> resolved
//	open|assigned --cancel (order cancelled; not a compensation's case)--> cancelled
//	open|assigned --amend, or the retired task fails or is reconciled absent--> cancelled (resolution amended)
type CaseStatus string

// Fallout case statuses.
const (
	CaseOpen      CaseStatus = "open"
	CaseAssigned  CaseStatus = "assigned"
	CaseResolved  CaseStatus = "resolved"
	CaseCancelled CaseStatus = "cancelled"
)

// DefaultFalloutQueue is the owner of a new fallout case: the tenant's
// operations queue, until assignFallout names a person.
const DefaultFalloutQueue = "ops"

// Resolutions of a fallout case.
const (
	ResolutionRetried           = "retried"
	ResolutionCompletedManually = "completedManually"
	ResolutionSkipped           = "skipped"
	ResolutionCompletedByWorker = "completedByWorker"
	// ResolutionReconciled: ops found no effect of a stuck task a cancel
	// waited for (reconcileTask absent); nothing to undo.
	ResolutionReconciled = "reconciled"
	ResolutionCancelled  = "orderCancelled"
)

// FalloutCase is one fallout case: a task that needs a person.
type FalloutCase struct {
	ID         string     `json:"id"` // "fc-<n>", unique within the order
	OrderID    string     `json:"orderId"`
	TaskID     string     `json:"taskId"`
	Cause      Cause      `json:"cause"`
	Status     CaseStatus `json:"status"`
	Owner      string     `json:"owner"`
	Reason     string     `json:"reason"` // what went wrong
	OpenedAt   time.Time  `json:"openedAt"`
	AssignedAt *time.Time `json:"assignedAt,omitempty"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	ResolvedBy string     `json:"resolvedBy,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
	Notes      []Note     `json:"notes,omitempty"`
}

// Note is a remark on a fallout case.
type Note struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Text string    `json:"text"`
}

// Active reports whether the case still needs a person.
func (c FalloutCase) Active() bool { return c.Status == CaseOpen || c.Status == CaseAssigned }

// caseID is the id of the n-th (1-based) fallout case of an order.
func caseID(n int) string { return "fc-" + strconv.Itoa(n) }

// fallout returns the index of the case with id, or -1.
func (s State) fallout(id string) int {
	for i, c := range s.Fallout {
		if c.ID == id {
			return i
		}
	}
	return -1
}

// activeCases returns the indexes of the active cases on task id.
func (s State) activeCases(taskID string) []int {
	var out []int
	for i, c := range s.Fallout {
		if c.TaskID == taskID && c.Active() {
			out = append(out, i)
		}
	}
	return out
}

// anyActiveCase reports whether some fallout case is open or assigned.
func (s State) anyActiveCase() bool {
	for _, c := range s.Fallout {
		if c.Active() {
			return true
		}
	}
	return false
}

// causeOutcome maps a failure's cause to the task's last known outcome.
func causeOutcome(c Cause) Outcome {
	switch c {
	case CauseBusinessRejection:
		return OutcomeRejected
	case CauseUnknownOutcome:
		return OutcomeUnknown
	}
	return OutcomeFailed
}
