package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/grainline/grainline/grains/order"
)

// CommandMilestones reads an order's progress against its commitment: its
// committed date, milestones and jeopardy alerts.
const CommandMilestones = "milestones"

// MilestonesBody is the reply of CommandMilestones.
type MilestonesBody struct {
	OrderID        string                `json:"orderId"`
	Status         order.Status          `json:"status"`
	CommittedDate  *time.Time            `json:"committedDate,omitempty"`
	JeopardyAt     *time.Time            `json:"jeopardyAt,omitempty"`
	Items          []order.Milestone     `json:"items"`
	JeopardyAlerts []order.JeopardyAlert `json:"jeopardyAlerts"`
}

// milestones answers the order's milestones, oldest first, and its
// jeopardy alerts.
func (d *Dispatcher) milestones(ctx context.Context, req Request) Reply {
	s, rev, err := d.orderState(ctx, req, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	b := MilestonesBody{OrderID: s.ID, Status: s.Status, CommittedDate: s.CommittedDate, JeopardyAt: s.JeopardyAt,
		Items: s.Milestones, JeopardyAlerts: s.JeopardyAlerts}
	if b.Items == nil {
		b.Items = []order.Milestone{}
	}
	if b.JeopardyAlerts == nil {
		b.JeopardyAlerts = []order.JeopardyAlert{}
	}
	body, err := json.Marshal(b)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, req.ID, rev)
}
