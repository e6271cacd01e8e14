package order

import (
	"sort"
	"strings"
	"time"
)

// CancelState is the state of a cancel request (TMF622 CancelProductOrder).
type CancelState string

// Cancel request states:
//
//	acknowledged  accepted; the order assesses its items (assessingCancellation)
//	inProgress    compensations are running (pendingCancellation)
//	done          every compensation is done: the order is cancelled
//	terminatedWithError  declared for TMF622; not reached (a failed
//	              compensation opens a fallout case instead)
const (
	CancelAcknowledged        CancelState = "acknowledged"
	CancelInProgress          CancelState = "inProgress"
	CancelDone                CancelState = "done"
	CancelTerminatedWithError CancelState = "terminatedWithError"
)

// CancelIDPrefix starts the id of an order's cancel request.
const CancelIDPrefix = "co-"

// CancelID is the id of the cancel request of order orderID: an order has
// at most one, so the id is derived ("o-XYZ" gives "co-o-XYZ").
func CancelID(orderID string) string { return CancelIDPrefix + orderID }

// OrderIDForCancel is the order id of a cancel request id; ok is false for
// an id CancelID did not make.
func OrderIDForCancel(cancelID string) (string, bool) {
	id, ok := strings.CutPrefix(cancelID, CancelIDPrefix)
	return id, ok && id != ""
}

// Cancellation is the order's cancel request.
type Cancellation struct {
	ID          string      `json:"id"`
	State       CancelState `json:"state"`
	Reason      string      `json:"reason"`
	RequestedBy string      `json:"requestedBy"`
	RequestedAt time.Time   `json:"requestedAt"`
	CompletedAt *time.Time  `json:"completedAt,omitempty"`
}

// cancelling reports whether a cancel request is under way.
func (s State) cancelling() bool {
	return s.Cancellation != nil && (s.Cancellation.State == CancelAcknowledged || s.Cancellation.State == CancelInProgress)
}

// pastNoReturn returns the tasks that put the order past its point of no
// return: a point-of-no-return task that is done, or requested (its effect
// may already exist).
func (s State) pastNoReturn() []string {
	var out []string
	for _, t := range s.Tasks {
		if t.PointOfNoReturn && t.Compensates == "" && (t.Status == TaskStatusDone || t.Status == TaskStatusPending) {
			out = append(out, t.TaskID)
		}
	}
	return out
}

// awaitingAssessment reports whether a requested task with a compensation
// is still running: its outcome decides whether it must be undone.
func (s State) awaitingAssessment() bool {
	for _, t := range s.Tasks {
		if t.Compensates == "" && t.Compensation != "" && t.Status == TaskStatusPending {
			return true
		}
	}
	return false
}

// cancelAwaits reports whether a running cancel request waits for the
// outcome of task id: a requested forward task with a compensation. Its
// fallout case stays open through the cancel, and reconcileTask is the one
// recovery allowed on it.
func (s State) cancelAwaits(id string) bool {
	i := s.task(id)
	if i < 0 {
		return false
	}
	t := s.Tasks[i]
	return t.Compensates == "" && t.Compensation != "" && t.Status == TaskStatusPending && !t.retired()
}

// toCompensate returns the forward tasks to undo, latest done first: done
// tasks with a compensation, and failed ones whose outcome is unknown (the
// effect may exist), which were never compensated yet.
func (s State) toCompensate() []Task {
	requested := map[string]bool{}
	for _, t := range s.Tasks {
		if t.Compensates != "" {
			requested[t.Compensates] = true
		}
	}
	var out []Task
	for _, t := range s.Tasks {
		if t.Compensates != "" || t.Compensation == "" || requested[t.TaskID] {
			continue
		}
		if t.Status == TaskStatusDone || (t.Status == TaskStatusFailed && t.Outcome == OutcomeUnknown) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DoneSeq > out[j].DoneSeq })
	return out
}

// compensationRunning reports whether a compensation task is pending or
// failed (with its fallout case).
func (s State) compensationRunning() bool {
	for _, t := range s.Tasks {
		if t.Compensates != "" && (t.Status == TaskStatusPending || t.Status == TaskStatusFailed) {
			return true
		}
	}
	return false
}

// isCompensation reports whether task id is a compensation task.
func (s State) isCompensation(id string) bool {
	i := s.task(id)
	return i >= 0 && s.Tasks[i].Compensates != ""
}

// compensationTaskID is the id of the compensation of task id.
func compensationTaskID(taskID, compensation string) string {
	if i := strings.LastIndexByte(taskID, '/'); i >= 0 {
		return taskID[:i+1] + compensation
	}
	return taskID + "/" + compensation
}
