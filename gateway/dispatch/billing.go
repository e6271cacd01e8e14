package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
)

// CommandBillingCallback is the billing system's callback on an order's
// billing task: HTTP POST /v1/callbacks/billing, NATS
// <prefix>.<tenant>.order.billingCallback (ADR 0022).
const CommandBillingCallback = "billingCallback"

// RoleBilling is the role of the billing system's tokens: it may report
// the result of billing tasks of its token's tenant, nothing else.
const RoleBilling = "billing"

// Billing callback statuses.
const (
	BillingActive   = "active"
	BillingRejected = "rejected"
)

// BillingCallback is the body of a billing callback. It names the task by
// orderId and taskId (whole, or relative to the order: "1/activateBilling"),
// or by externalKey, the idempotency key the worker sent to the billing
// system ("grainline:<tenant>:<taskId>"); when both are given they must
// agree.
type BillingCallback struct {
	OrderID     string `json:"orderId,omitempty"`
	TaskID      string `json:"taskId,omitempty"`
	ExternalKey string `json:"externalKey,omitempty"`
	// Status is BillingActive or BillingRejected.
	Status string `json:"status"`
	// BillingRef is the billing system's reference of the activation;
	// required when active.
	BillingRef string `json:"billingRef,omitempty"`
	// Reason says why the activation was rejected; required when rejected.
	Reason string `json:"reason,omitempty"`
}

// BillingCallbackReply is the answer to a billing callback: the task's
// status after it.
type BillingCallbackReply struct {
	OrderID     string `json:"orderId"`
	TaskID      string `json:"taskId"`
	TaskStatus  string `json:"taskStatus"`
	OrderStatus string `json:"orderStatus"`
}

// externalKeyPrefix starts fulfillment.ExternalKey's keys.
const externalKeyPrefix = "grainline:"

// BillingCallbackKey is the idempotency key of the order command a billing
// callback becomes: one per task and status, so a repeated callback replays
// the first answer.
func BillingCallbackKey(taskID, status string) string {
	return "billing-callback:" + taskID + ":" + status
}

// billingCallback turns a billing callback into completeTask (active) or
// failTask with cause business_rejection (rejected) on the order, as the
// billing system (role system at the grain, the token's subject as actor).
// An order or task the token's tenant does not have is not_found.
func (d *Dispatcher) billingCallback(ctx context.Context, req Request) Reply {
	if !slices.Contains(req.Principal.Roles, RoleBilling) {
		return Fail(grains.Errorf(grains.CodeForbidden, "billing callbacks need role %q", RoleBilling), req.Instance)
	}
	payload, err := ObjectPayload(req.Payload)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var cb BillingCallback
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cb); err != nil {
		return Fail(grains.Errorf(grains.CodeBadRequest, "billing callback: %v", err), req.Instance)
	}
	orderID, taskID, err := cb.resolve(req.Principal.Tenant)
	if err != nil {
		return Fail(err, req.Instance)
	}
	s, _, err := d.orderState(ctx, req, orderID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var task *order.Task
	for i := range s.Tasks {
		if s.Tasks[i].TaskID == taskID {
			task = &s.Tasks[i]
		}
	}
	switch {
	case task == nil:
		return Fail(grains.Errorf(grains.CodeNotFound, "order %s has no task %s", orderID, taskID), req.Instance)
	case task.Type != plan.TypeActivateBilling:
		return Fail(&grains.Error{Code: grains.CodeValidation,
			Message:    "billing callback: task " + taskID + " is a " + task.Type + " task, not a billing task",
			Violations: []grains.Violation{{Pointer: "/taskId", Code: "not_billing", Message: "the task is not a billing task"}}}, req.Instance)
	}
	name, body := order.CmdCompleteTask, any(order.CompleteTask{TaskID: taskID})
	if cb.Status == BillingActive {
		result, _ := json.Marshal(map[string]string{"externalRef": cb.BillingRef, "system": "billing",
			"idempotencyKey": externalKeyPrefix + string(req.Principal.Tenant) + ":" + taskID, "via": "callback"})
		body = order.CompleteTask{TaskID: taskID, Result: result}
	} else {
		name, body = order.CmdFailTask, order.FailTask{TaskID: taskID, Reason: "billing rejected the activation: " + cb.Reason,
			Cause: order.CauseBusinessRejection}
	}
	cmd, _ := json.Marshal(body) // plain structs: cannot fail
	res, err := d.deps.Sender.Send(ctx, call.Command{
		Tenant:         req.Principal.Tenant,
		Kind:           grains.KindOrder,
		ID:             orderID,
		Name:           name,
		Payload:        cmd,
		IdempotencyKey: BillingCallbackKey(taskID, cb.Status),
		Actor:          req.Principal.Subject,
		Roles:          []string{order.RoleSystem},
		CorrelationID:  req.CorrelationID,
	})
	if err != nil {
		return Fail(err, req.Instance)
	}
	var after order.State
	if err := json.Unmarshal(res.State, &after); err != nil {
		return Fail(grains.Errorf(grains.CodeInternal, "order %s: state does not decode: %v", orderID, err), req.Instance)
	}
	rep := BillingCallbackReply{OrderID: orderID, TaskID: taskID, OrderStatus: string(after.Status)}
	for _, t := range after.Tasks {
		if t.TaskID == taskID {
			rep.TaskStatus = string(t.Status)
		}
	}
	out, err := json.Marshal(rep)
	if err != nil {
		return Fail(err, req.Instance)
	}
	r := ok(http.StatusOK, out, orderID, res.Revision)
	r.Replayed = res.Replayed
	return r
}

// resolve checks the callback and returns the order and task it names. An
// external key of another tenant is not_found, as if it did not exist.
func (cb BillingCallback) resolve(tenant grains.TenantID) (orderID, taskID string, err error) {
	var v grains.Violations
	switch cb.Status {
	case BillingActive:
		if strings.TrimSpace(cb.BillingRef) == "" {
			v.Add("/billingRef", "required", "billingRef is required when the activation is active")
		}
	case BillingRejected:
		if strings.TrimSpace(cb.Reason) == "" {
			v.Add("/reason", "required", "reason is required when the activation is rejected")
		}
	case "":
		v.Add("/status", "required", "status is required")
	default:
		v.Add("/status", "enum", "status must be active or rejected")
	}
	taskID = cb.TaskID
	if cb.OrderID != "" && taskID != "" && !strings.HasPrefix(taskID, cb.OrderID+"/") {
		taskID = cb.OrderID + "/" + taskID
	}
	if cb.ExternalKey != "" {
		rest, ok := strings.CutPrefix(cb.ExternalKey, externalKeyPrefix)
		keyTenant, keyTask, found := strings.Cut(rest, ":")
		switch {
		case !ok || !found || keyTask == "":
			v.Add("/externalKey", "format", "externalKey must be grainline:<tenant>:<taskId>")
		case grains.TenantID(keyTenant) != tenant:
			return "", "", grains.Errorf(grains.CodeNotFound, "no billing task under external key %q", cb.ExternalKey)
		case taskID != "" && taskID != keyTask:
			v.Add("/taskId", "mismatch", "taskId and externalKey name different tasks")
		default:
			taskID = keyTask
		}
	}
	if taskID == "" && cb.ExternalKey == "" {
		v.Add("/taskId", "required", "name the task by orderId and taskId, or by externalKey")
	}
	if taskID != "" {
		orderID, _, _ = strings.Cut(taskID, "/")
		if cb.OrderID != "" && cb.OrderID != orderID {
			v.Add("/orderId", "mismatch", "the task does not belong to orderId")
		}
		if err := ValidID(orderID); err != nil {
			v.Add("/taskId", "format", "the task id does not start with a valid order id")
		}
	}
	if err := v.Err(CommandBillingCallback); err != nil {
		return "", "", err
	}
	return orderID, taskID, nil
}
