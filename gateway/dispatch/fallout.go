package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

// CommandFallout reads an order's fallout cases: {"items": [...]}.
const CommandFallout = "fallout"

// KindCancelProductOrder addresses an order's cancel request (TMF622
// CancelProductOrder). It is not a grain: "create" (payload
// {"productOrderId", "reason"}) sends cancel to the order, "get" reads the
// request from the order's state.
const KindCancelProductOrder grains.Kind = "cancelProductOrder"

// orderCommands are the order commands the front doors accept.
var orderCommands = []string{order.CmdCancel, order.CmdAmend, order.CmdRetryTask, order.CmdCompleteTaskManually, order.CmdSkipTask,
	order.CmdReconcileTask, order.CmdAssignFallout, CommandFallout, CommandBillingCallback, CommandMilestones}

// TaskPayload merges the task of an HTTP path into a recovery command's
// body. ref is the task id, whole or relative to the order ("3/provision"
// for "o-1/3/provision"); a taskId in the body must name the same task.
func TaskPayload(orderID, ref string, body []byte) ([]byte, error) {
	if ref == "" || strings.ContainsAny(ref, "\x00?#") {
		return nil, grains.Errorf(grains.CodeBadRequest, "the task in the path is not a task id")
	}
	taskID := ref
	if !strings.HasPrefix(ref, orderID+"/") {
		taskID = orderID + "/" + ref
	}
	return mergeField(body, "taskId", taskID)
}

// CasePayload merges the fallout case of an HTTP path into assignFallout's
// body.
func CasePayload(caseID string, body []byte) ([]byte, error) {
	if err := ValidID(caseID); err != nil {
		return nil, err
	}
	return mergeField(body, "caseId", caseID)
}

// mergeField sets field in the JSON object body to value; the body may
// carry the same value, not another.
func mergeField(body []byte, field, value string) ([]byte, error) {
	payload, err := ObjectPayload(body)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, grains.Errorf(grains.CodeBadRequest, "the body must be one JSON object")
	}
	if raw, ok := m[field]; ok {
		var inBody string
		if json.Unmarshal(raw, &inBody) != nil || inBody != value {
			return nil, grains.Errorf(grains.CodeBadRequest, "%s in the body must match the path", field)
		}
	}
	m[field], _ = json.Marshal(value)
	return json.Marshal(m)
}

// orderState reads and decodes an order.
func (d *Dispatcher) orderState(ctx context.Context, req Request, id string) (order.State, int64, error) {
	if err := ValidID(id); err != nil {
		return order.State{}, 0, err
	}
	res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, grains.KindOrder, id)
	if err != nil {
		return order.State{}, 0, err
	}
	var s order.State
	if err := json.Unmarshal(res.State, &s); err != nil {
		return order.State{}, 0, grains.Errorf(grains.CodeInternal, "order %s: state does not decode: %v", id, err)
	}
	return s, res.Revision, nil
}

// fallout answers the order's fallout cases, oldest first.
func (d *Dispatcher) fallout(ctx context.Context, req Request) Reply {
	s, rev, err := d.orderState(ctx, req, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	items := s.Fallout
	if items == nil {
		items = []order.FalloutCase{}
	}
	body, err := json.Marshal(struct {
		OrderID string              `json:"orderId"`
		Status  order.Status        `json:"status"`
		Items   []order.FalloutCase `json:"items"`
	}{s.ID, s.Status, items})
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, req.ID, rev)
}

// CancelBody is a cancel request as the API shows it (TMF622
// CancelProductOrder).
type CancelBody struct {
	ID             string            `json:"id"`
	Href           string            `json:"href"`
	ProductOrderID string            `json:"productOrderId"`
	State          order.CancelState `json:"state"`
	Reason         string            `json:"cancellationReason"`
	RequestedBy    string            `json:"requestedBy"`
	RequestedAt    string            `json:"requestedAt"`
	CompletedAt    string            `json:"effectiveCancellationDate,omitempty"`
	// OrderStatus is the order's status now.
	OrderStatus order.Status `json:"orderStatus"`
}

// CancelHref is the HTTP path of a cancel request.
func CancelHref(id string) string { return "/v1/cancelProductOrder/" + id }

func cancelReply(status int, s order.State, rev int64, instance string) Reply {
	c := s.Cancellation
	if c == nil {
		return Fail(grains.Errorf(grains.CodeNotFound, "order %s has no cancel request", s.ID), instance)
	}
	b := CancelBody{ID: c.ID, Href: CancelHref(c.ID), ProductOrderID: s.ID, State: c.State, Reason: c.Reason,
		RequestedBy: c.RequestedBy, RequestedAt: c.RequestedAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00"), OrderStatus: s.Status}
	if c.CompletedAt != nil {
		b.CompletedAt = c.CompletedAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	}
	body, err := json.Marshal(b)
	if err != nil {
		return Fail(err, instance)
	}
	r := ok(status, body, c.ID, rev)
	if status == http.StatusCreated {
		r.Location = b.Href
	}
	return r
}

// cancelProductOrder serves KindCancelProductOrder.
func (d *Dispatcher) cancelProductOrder(ctx context.Context, req Request) Reply {
	switch req.Command {
	case CommandGet:
		orderID, found := order.OrderIDForCancel(req.ID)
		if err := ValidID(req.ID); err != nil {
			return Fail(err, req.Instance)
		}
		if !found {
			return Fail(grains.Errorf(grains.CodeNotFound, "no cancel request %s", req.ID), req.Instance)
		}
		s, rev, err := d.orderState(ctx, req, orderID)
		if err != nil {
			return Fail(err, req.Instance)
		}
		return cancelReply(http.StatusOK, s, rev, req.Instance)
	case CommandCreate:
	default:
		return Fail(grains.Errorf(grains.CodeNotFound, "no command %q on %q", req.Command, req.Kind), req.Instance)
	}
	if req.ID != "" {
		return Fail(grains.Errorf(grains.CodeBadRequest, "create assigns the id; do not send one"), req.Instance)
	}
	payload, err := ObjectPayload(req.Payload)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var in struct {
		ProductOrderID string `json:"productOrderId"`
		Reason         string `json:"reason"`
	}
	if err := grains.DecodePayload("cancelProductOrder", payload, &in, true); err != nil {
		return Fail(err, req.Instance)
	}
	if in.ProductOrderID == "" {
		return Fail(grains.Violations{{Pointer: "/productOrderId", Code: "required", Message: "productOrderId is required"}}.Err("cancelProductOrder"), req.Instance)
	}
	cancelPayload, _ := json.Marshal(order.Cancel{Reason: in.Reason})
	cmd := req
	cmd.Kind, cmd.ID, cmd.Command, cmd.Payload = grains.KindOrder, in.ProductOrderID, order.CmdCancel, cancelPayload
	r := d.Do(ctx, cmd)
	if r.Status != http.StatusOK {
		return r
	}
	var s order.State
	if err := json.Unmarshal(r.Body, &s); err != nil {
		return Fail(grains.Errorf(grains.CodeInternal, "order %s: state does not decode: %v", in.ProductOrderID, err), req.Instance)
	}
	var rev int64
	if r.ETag != "" {
		rev, _ = ParseIfMatch(r.ETag)
	}
	out := cancelReply(http.StatusCreated, s, rev, req.Instance)
	out.Replayed = r.Replayed
	return out
}
