package order

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/plan"
)

// Committed date and jeopardy (ADR 0024).
//
// At creation the order gets a committed date (TMF622: the date the seller
// commits to complete by): the create command's requestedCompletionDate
// when set, else acceptedAt plus the pinned plan version's lead time. The
// date is at risk jeopardyMarginSeconds before it (the create command's, else
// the plan's, else a quarter of the window from creation). OrderCreated sets
// two durable timers that send checkJeopardy: "jeopardy" when the date
// becomes at risk (jeopardyType hazard) and "overdue" at the date itself
// (critical). When one fires and the order has not finished, the order
// raises one jeopardy alert of that type (OrderJeopardyRaised); each type is
// raised at most once. A finished order (completed, partial, failed,
// cancelled) cancels both timers; an order being cancelled raises none.

// CmdCheckJeopardy is sent by the order's jeopardy timers.
const CmdCheckJeopardy = "checkJeopardy"

// Timer IDs of the jeopardy timers.
const (
	TimerJeopardy = "jeopardy" // when the committed date becomes at risk
	TimerOverdue  = "overdue"  // at the committed date
)

// EvJeopardyRaised is the wire name of JeopardyRaised.
const EvJeopardyRaised = "OrderJeopardyRaised"

// JeopardyType is how serious a jeopardy alert is (TMF622 jeopardyType).
type JeopardyType string

// Jeopardy types.
const (
	// JeopardyHazard: the committed date is at risk (the jeopardy margin was
	// reached and the order has not finished).
	JeopardyHazard JeopardyType = "hazard"
	// JeopardyCritical: the committed date passed and the order has not
	// finished.
	JeopardyCritical JeopardyType = "critical"
)

// Jeopardy alert names, by type.
const (
	AlertCommittedDateAtRisk = "committedDateAtRisk"
	AlertCommittedDateMissed = "committedDateMissed"
)

// JeopardyAlert is one alert the order raised (TMF622 JeopardyAlert).
type JeopardyAlert struct {
	ID           string       `json:"id"` // "ja-<n>", unique within the order
	Name         string       `json:"name"`
	JeopardyType JeopardyType `json:"jeopardyType"`
	AlertDate    time.Time    `json:"alertDate"`
	Message      string       `json:"message"`
	// CommittedDate is the committed date at risk.
	CommittedDate time.Time `json:"committedDate"`
	// Items are the items at risk: those not completed, with their state.
	Items []ItemRef `json:"items"`
	// Tasks are the tasks holding the order: requested or failed ones.
	Tasks []string `json:"tasks,omitempty"`
}

// ItemRef names an order item and its state at the time.
type ItemRef struct {
	ID    string `json:"id"`
	State Status `json:"state"`
}

// CheckJeopardy is the jeopardy timers' command: At is the date the timer
// was set for (the order's jeopardyAt for hazard, its committedDate for
// critical); a timer for another date is stale.
type CheckJeopardy struct {
	JeopardyType JeopardyType `json:"jeopardyType"`
	At           time.Time    `json:"at"`
}

// CommandName implements grains.Command.
func (CheckJeopardy) CommandName() string { return CmdCheckJeopardy }

func (c CheckJeopardy) check(v *grains.Violations) {
	if c.JeopardyType != JeopardyHazard && c.JeopardyType != JeopardyCritical {
		v.Add("/jeopardyType", "enum", "jeopardyType must be hazard or critical")
	}
	if c.At.IsZero() {
		v.Add("/at", "required", "at is required")
	}
}

// JeopardyRaised: the order raised a jeopardy alert. Status is unchanged.
type JeopardyRaised struct {
	OrderID       string        `json:"orderId"`
	QuoteID       string        `json:"quoteId"`
	Status        Status        `json:"status"`
	JeopardyAlert JeopardyAlert `json:"jeopardyAlert"`
}

// EventName implements grains.Event.
func (JeopardyRaised) EventName() string { return EvJeopardyRaised }

// commit computes the commitment of a new order from its create command.
func (d decider) commit(c Create, version int, now time.Time) plan.Commitment {
	p, _ := d.plans.Plan(version) // decomposed already: the version exists
	var requested time.Time
	if c.RequestedCompletionDate != nil {
		requested = *c.RequestedCompletionDate
	}
	return p.Commit(now, c.AcceptedAt, requested, time.Duration(c.JeopardyMarginSeconds)*time.Second)
}

// withCommitment returns the created event with the commitment set.
func withCommitment(e Created, c Create, cm plan.Commitment) Created {
	if c.RequestedCompletionDate != nil {
		e.RequestedCompletionDate = timePtr(c.RequestedCompletionDate.UTC())
	}
	e.CommittedDate, e.JeopardyAt = timePtr(cm.CommittedDate), timePtr(cm.JeopardyAt)
	return e
}

// Timers implements grains.TimerEffects: the jeopardy timers of an order
// with a committed date. The "jeopardy" timer is left out when the date is
// at risk only at the date itself (no margin).
func (e Created) Timers() ([]grains.Timer, []string) {
	if e.CommittedDate == nil {
		return nil, nil // created before committed dates
	}
	var set []grains.Timer
	if e.JeopardyAt != nil && e.JeopardyAt.Before(*e.CommittedDate) {
		set = append(set, jeopardyTimer(TimerJeopardy, JeopardyHazard, *e.JeopardyAt))
	}
	return append(set, jeopardyTimer(TimerOverdue, JeopardyCritical, *e.CommittedDate)), nil
}

func jeopardyTimer(id string, typ JeopardyType, at time.Time) grains.Timer {
	payload, _ := json.Marshal(CheckJeopardy{JeopardyType: typ, At: at}) // plain fields: cannot fail
	return grains.Timer{ID: id, At: at, Command: CmdCheckJeopardy, Payload: payload}
}

// finishedTimers are the timers a finished order cancels.
var finishedTimers = []string{TimerStuck, TimerJeopardy, TimerOverdue}

// Timers implements grains.TimerEffects: a finished order is not stuck
// and not in jeopardy.
func (Failed) Timers() ([]grains.Timer, []string) { return nil, finishedTimers }

// decideCheckJeopardy is a jeopardy timer firing: an order that has not
// finished, and is not being cancelled, raises the alert of the timer's
// type once. A timer for another date than the order's is stale.
func decideCheckJeopardy(s State, c CheckJeopardy, env grains.Env) ([]grains.Event, error) {
	if err := grains.RequireRole(env, CmdCheckJeopardy, RoleSystem); err != nil {
		return nil, err
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindOrder, env.ID, CmdCheckJeopardy)
	}
	switch s.Status {
	case StatusAcknowledged, StatusInProgress, StatusHeld:
	default:
		return nil, nil // finished, or being cancelled
	}
	due := s.JeopardyAt
	if c.JeopardyType == JeopardyCritical {
		due = s.CommittedDate
	}
	if due == nil || s.CommittedDate == nil || !due.Equal(c.At) || env.Now.Before(c.At) {
		return nil, nil // stale, or not due
	}
	if s.alerted(c.JeopardyType) {
		return nil, nil // raised already: fired again
	}
	now := env.Now.UTC()
	alert := s.jeopardyAlert(c.JeopardyType, now)
	return []grains.Event{JeopardyRaised{OrderID: s.ID, QuoteID: s.QuoteID, Status: s.Status, JeopardyAlert: alert}}, nil
}

// alerted reports whether the order raised an alert of typ.
func (s State) alerted(typ JeopardyType) bool {
	for _, a := range s.JeopardyAlerts {
		if a.JeopardyType == typ {
			return true
		}
	}
	return false
}

// jeopardyAlert builds the alert of typ the order raises now.
func (s State) jeopardyAlert(typ JeopardyType, now time.Time) JeopardyAlert {
	a := JeopardyAlert{ID: "ja-" + fmt.Sprint(len(s.JeopardyAlerts)+1), JeopardyType: typ, AlertDate: now,
		CommittedDate: *s.CommittedDate, Items: []ItemRef{}}
	for _, it := range s.Items {
		switch it.State {
		case StatusCompleted, StatusPartial, StatusCancelled:
			continue
		}
		a.Items = append(a.Items, ItemRef{ID: it.ID, State: it.State})
	}
	for _, t := range s.Tasks {
		if t.Compensates == "" && (t.Status == TaskStatusPending || t.Status == TaskStatusFailed) {
			a.Tasks = append(a.Tasks, t.TaskID)
		}
	}
	date := s.CommittedDate.Format(time.RFC3339)
	var msg strings.Builder
	switch typ {
	case JeopardyCritical:
		a.Name = AlertCommittedDateMissed
		fmt.Fprintf(&msg, "order %s missed its committed date %s", s.ID, date)
	default:
		a.Name = AlertCommittedDateAtRisk
		fmt.Fprintf(&msg, "order %s is at risk of missing its committed date %s", s.ID, date)
	}
	fmt.Fprintf(&msg, ": %d of %d items not completed", len(a.Items), len(s.Items))
	var cases []string
	for _, fc := range s.Fallout {
		if fc.Active() {
			cases = append(cases, fc.ID+" on "+fc.TaskID)
		}
	}
	if len(cases) > 0 {
		fmt.Fprintf(&msg, "; held by fallout %s", strings.Join(cases, ", "))
	}
	a.Message = msg.String()
	return a
}
