package order

import (
	"strconv"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// Milestones (TMF622 ProductOrderMilestone, ADR 0024) are recorded by Apply
// from the events already applied, never decided: replaying the events
// gives the same milestones. They are:
//
//	acknowledged            OrderCreated
//	<task milestone>        a task done (status reached) or skipped by ops
//	                        (status skipped), named for its type: reserved,
//	                        provisioned, billingActivated, notified,
//	                        reservationReleased, deprovisioned,
//	                        billingDeactivated; "<type>Done" for other types
//	itemCompleted           an item's tasks all done
//	itemPartiallyCompleted  an item's tasks all done or skipped, one skipped
//	amended                 OrderAmended (a change order, ADR 0023)
//	cancellationRequested   OrderCancellationRequested
//	completed | partial | failed | cancelled  the order finished

// MilestoneStatus is the status of a milestone.
type MilestoneStatus string

// Milestone statuses.
const (
	MilestoneReached MilestoneStatus = "reached"
	// MilestoneSkipped: ops skipped the task the milestone stands for.
	MilestoneSkipped MilestoneStatus = "skipped"
)

// Milestone is a significant point the order reached.
type Milestone struct {
	ID            string          `json:"id"` // "ms-<n>", in order of occurrence
	Name          string          `json:"name"`
	Status        MilestoneStatus `json:"status"`
	MilestoneDate time.Time       `json:"milestoneDate"`
	Message       string          `json:"message,omitempty"`
	ItemID        string          `json:"itemId,omitempty"` // the item concerned, if one
	TaskID        string          `json:"taskId,omitempty"` // the task concerned, if one
}

// Order-level milestone names.
const (
	MilestoneAcknowledged          = "acknowledged"
	MilestoneItemCompleted         = "itemCompleted"
	MilestoneItemPartial           = "itemPartiallyCompleted"
	MilestoneCancellationRequested = "cancellationRequested"
	MilestoneAmended               = "amended"
)

// taskMilestones names the milestone of a task type.
var taskMilestones = map[string]string{
	plan.TypeReserveInventory:           "reserved",
	plan.TypeProvision:                  "provisioned",
	plan.TypeActivateBilling:            "billingActivated",
	plan.TypeNotify:                     "notified",
	plan.CompensationReleaseReservation: "reservationReleased",
	plan.CompensationDeprovision:        "deprovisioned",
	plan.CompensationDeactivateBilling:  "billingDeactivated",
}

// TaskMilestone is the name of the milestone a task of taskType reaches
// when done.
func TaskMilestone(taskType string) string {
	if n, ok := taskMilestones[taskType]; ok {
		return n
	}
	return taskType + "Done"
}

// Apply folds one event into s. Events it does not know leave s unchanged.
// Item states are recomputed from the tasks after every task event, and
// the milestones the event marks are recorded.
func Apply(s State, ev grains.Event) State {
	prev := s
	s = applyEvent(s, ev)
	return s.track(prev, ev)
}

// track records what ev means for the order's commitment, milestones and
// jeopardy alerts; prev is the state before ev.
func (s State) track(prev State, ev grains.Event) State {
	switch e := ev.(type) {
	case Created:
		s.RequestedCompletionDate, s.CommittedDate, s.JeopardyAt = e.RequestedCompletionDate, e.CommittedDate, e.JeopardyAt
		s.Milestones, s.JeopardyAlerts = nil, []JeopardyAlert{}
		s = s.milestone(Milestone{Name: MilestoneAcknowledged, MilestoneDate: e.CreatedAt,
			Message: "order created from quote " + e.QuoteID})
	case TaskCompleted:
		if i := s.task(e.TaskID); i >= 0 {
			t := s.Tasks[i]
			msg := "task " + t.TaskID + " done"
			if e.CompletedBy != "" {
				msg += " by hand by " + e.CompletedBy + ": " + e.Reason
			}
			s = s.milestone(Milestone{Name: TaskMilestone(t.Type), Status: MilestoneReached, MilestoneDate: e.CompletedAt,
				Message: msg, ItemID: t.LineID, TaskID: t.TaskID})
		}
		s = s.itemMilestones(prev, e.CompletedAt)
	case TaskSkipped:
		if i := s.task(e.TaskID); i >= 0 {
			t := s.Tasks[i]
			s = s.milestone(Milestone{Name: TaskMilestone(t.Type), Status: MilestoneSkipped, MilestoneDate: e.SkippedAt,
				Message: "task " + t.TaskID + " skipped by " + e.SkippedBy + ": " + e.Reason, ItemID: t.LineID, TaskID: t.TaskID})
		}
		s = s.itemMilestones(prev, e.SkippedAt)
	case Amended:
		a := e.Amendment
		s = s.milestone(Milestone{Name: MilestoneAmended, MilestoneDate: a.At,
			Message: "amendment " + strconv.Itoa(a.Number) + " by " + a.By + ": " + a.Reason})
	case CancellationRequested:
		s = s.milestone(Milestone{Name: MilestoneCancellationRequested, MilestoneDate: e.RequestedAt,
			Message: "requested by " + e.RequestedBy + ": " + e.Reason})
	case Completed:
		s = s.milestone(Milestone{Name: string(e.Status), MilestoneDate: e.CompletedAt})
	case Failed:
		s = s.milestone(Milestone{Name: string(e.Status), MilestoneDate: e.FailedAt, Message: e.Reason, TaskID: e.TaskID})
	case Cancelled:
		s = s.milestone(Milestone{Name: string(StatusCancelled), MilestoneDate: e.CancelledAt, Message: e.Reason})
	case JeopardyRaised:
		s.JeopardyAlerts = append(cloneAlerts(s.JeopardyAlerts), e.JeopardyAlert)
	}
	return s
}

// milestone returns s with m recorded, numbered and reached unless set.
func (s State) milestone(m Milestone) State {
	m.ID = "ms-" + strconv.Itoa(len(s.Milestones)+1)
	if m.Status == "" {
		m.Status = MilestoneReached
	}
	s.Milestones = append(cloneMilestones(s.Milestones), m)
	return s
}

// itemMilestones records the items that completed with the last event.
func (s State) itemMilestones(prev State, at time.Time) State {
	was := make(map[string]Status, len(prev.Items))
	for _, it := range prev.Items {
		was[it.ID] = it.State
	}
	for _, it := range s.Items {
		if it.State == was[it.ID] {
			continue
		}
		switch it.State {
		case StatusCompleted:
			s = s.milestone(Milestone{Name: MilestoneItemCompleted, MilestoneDate: at, ItemID: it.ID})
		case StatusPartial:
			s = s.milestone(Milestone{Name: MilestoneItemPartial, MilestoneDate: at, ItemID: it.ID,
				Message: "some of the item's tasks were skipped"})
		}
	}
	return s
}

func cloneMilestones(ms []Milestone) []Milestone {
	return append(make([]Milestone, 0, len(ms)+1), ms...)
}

func cloneAlerts(as []JeopardyAlert) []JeopardyAlert {
	return append(make([]JeopardyAlert, 0, len(as)+1), as...)
}
