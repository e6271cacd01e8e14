package fulfillment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Task types the worker knows (they match grains/plan).
const (
	TypeReserveInventory = "reserveInventory"
	TypeProvision        = "provision"
	TypeActivateBilling  = "activateBilling"
	TypeNotify           = "notify"
)

// Compensation task types: the order requests them on cancellation, with
// Task.Compensates naming the task they undo.
const (
	TypeReleaseReservation = "releaseReservation"
	TypeDeprovision        = "deprovision"
)

// Error classes an adapter reports. A call error wrapping ErrRejected is a
// business rejection (the task cannot succeed as asked); one wrapping
// ErrTechnical is a failure that certainly left no side effect (the system
// refused the call before acting: unavailable, throttled). Every other error
// (a timeout, a lost connection, anything unclassified) is an unknown
// outcome: the side effect may have happened, so the worker queries the
// system by the idempotency key before it calls again.
var (
	ErrTechnical = errors.New("fulfillment: technical failure at the external system")
	// ErrNoAdapter: the worker has no adapter for the task's type.
	ErrNoAdapter = errors.New("fulfillment: no adapter for the task type")
)

// Request is one call towards an external system.
type Request struct {
	Tenant   string
	OrderID  string
	TaskID   string
	TaskType string
	LineID   string
	// Attempt is the order's attempt number of the task (informational:
	// it is not part of IdempotencyKey).
	Attempt int
	// IdempotencyKey identifies the task at the external system. It is the
	// same on every call and every redelivery of one task, so the system
	// dedupes: see ExternalKey.
	IdempotencyKey string
	Lines          json.RawMessage
	// Compensates is, for a compensation task, the id of the task it
	// undoes; the effect to undo is under ExternalKey(Tenant, Compensates).
	Compensates string
}

// Receipt is what an external system records for a successful call.
type Receipt struct {
	// Key is the idempotency key the effect was recorded under.
	Key string
	// Ref is the external system's reference, e.g. a reservation id.
	Ref string
	// Fields are further system-specific details.
	Fields map[string]string
	// Pending: the system accepted the call (or, from a query, holds it)
	// but has not decided it yet; the result comes later by callback.
	// Only Billing reports it. A pending receipt is not a success: the
	// worker tells the order to await the callback (awaitTask).
	Pending bool
}

// Inventory reserves stock.
type Inventory interface {
	Reserve(ctx context.Context, req Request) (Receipt, error)
	// Query reports the reservation recorded under key, if any.
	Query(ctx context.Context, key string) (Receipt, bool, error)
	// Release gives the reservation under key back (a compensation).
	Release(ctx context.Context, key string) error
}

// Provisioning sets the service up in the network.
type Provisioning interface {
	Provision(ctx context.Context, req Request) (Receipt, error)
	Query(ctx context.Context, key string) (Receipt, bool, error)
	// Deprovision undoes the provisioning under key (a compensation).
	Deprovision(ctx context.Context, key string) error
}

// Billing activates charging for the service, synchronously or
// asynchronously.
//
// Activate returns the activation's receipt when the system decided at once
// (synchronous), or a receipt with Pending set when it accepted the
// activation and will report the result by callback (asynchronous: the
// billing callback endpoint, ADR 0022). A rejection is an error wrapping
// ErrRejected; a repeated call with the same idempotency key never
// activates twice.
//
// Query reports the activation under an idempotency key (ExternalKey):
// absent (found false), pending (found, Pending set), active (found, with
// its reference) or rejected (an error wrapping ErrRejected).
type Billing interface {
	Activate(ctx context.Context, req Request) (Receipt, error)
	Query(ctx context.Context, key string) (Receipt, bool, error)
}

// Notification tells the customer. The system dedupes by the request's
// idempotency key; it has no query, so an unknown outcome is resolved by
// calling again with the same key.
type Notification interface {
	Notify(ctx context.Context, req Request) (Receipt, error)
}

// Adapters are the external systems the worker calls, one per task type. A
// nil adapter means the worker does not handle that task type: such tasks
// are dead-lettered.
type Adapters struct {
	Inventory    Inventory
	Provisioning Provisioning
	Billing      Billing
	Notification Notification
}

// ExternalKey is the idempotency key of a task towards the external system:
// tenant and task id, deliberately without the attempt, so every retry and
// redelivery of the task carries the same key.
func ExternalKey(tenant, taskID string) string {
	return "grainline:" + tenant + ":" + taskID
}

// operation is one task type's call and, when the system has one, its query.
type operation struct {
	system string
	// name is the call's name in attempt records ("reserve", ...).
	name  string
	do    func(ctx context.Context, req Request) (Receipt, error)
	query func(ctx context.Context, key string) (Receipt, bool, error)
}

func (a Adapters) operation(taskType string) (operation, error) {
	switch taskType {
	case TypeReserveInventory:
		if a.Inventory != nil {
			return operation{system: "inventory", name: "reserve", do: a.Inventory.Reserve, query: a.Inventory.Query}, nil
		}
	case TypeProvision:
		if a.Provisioning != nil {
			op := operation{system: "provisioning", name: "provision", do: a.Provisioning.Provision, query: a.Provisioning.Query}
			if _, legacy := a.Provisioning.(legacyProvisioning); legacy {
				op.query = nil
			}
			return op, nil
		}
	case TypeActivateBilling:
		if a.Billing != nil {
			return operation{system: "billing", name: "activate", do: a.Billing.Activate, query: a.Billing.Query}, nil
		}
	case TypeNotify:
		if a.Notification != nil {
			return operation{system: "notification", name: "notify", do: a.Notification.Notify}, nil
		}
	case TypeReleaseReservation:
		if a.Inventory != nil {
			return operation{system: "inventory", name: "release", do: undo(a.Inventory.Release)}, nil
		}
	case TypeDeprovision:
		if a.Provisioning != nil {
			return operation{system: "provisioning", name: "deprovision", do: undo(a.Provisioning.Deprovision)}, nil
		}
	}
	return operation{}, fmt.Errorf("%w: %q", ErrNoAdapter, taskType)
}

// undo adapts a compensation call: it undoes the effect recorded under the
// compensated task's key. Compensations are idempotent (undoing twice is a
// no-op), so an unknown outcome is resolved by calling again.
func undo(f func(ctx context.Context, key string) error) func(ctx context.Context, req Request) (Receipt, error) {
	return func(ctx context.Context, req Request) (Receipt, error) {
		if req.Compensates == "" {
			return Receipt{}, fmt.Errorf("%w: compensation task %s names no task to undo", ErrRejected, req.TaskID)
		}
		key := ExternalKey(req.Tenant, req.Compensates)
		if err := f(ctx, key); err != nil {
			return Receipt{}, err
		}
		return Receipt{Key: key, Fields: map[string]string{"undone": req.Compensates}}, nil
	}
}

// legacyProvisioning adapts a Provisioner (which is idempotent per tenant
// and task id and has no query) to Provisioning.
type legacyProvisioning struct{ p Provisioner }

func (l legacyProvisioning) Provision(ctx context.Context, req Request) (Receipt, error) {
	res, err := l.p.Provision(ctx, req.Tenant, req.TaskID)
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{Key: req.IdempotencyKey, Ref: res["externalRef"], Fields: res}, nil
}

func (legacyProvisioning) Deprovision(context.Context, string) error {
	return fmt.Errorf("%w: deprovision is not supported by this provisioner", ErrRejected)
}

// Query is not available: the worker repeats Provision with the same task
// id instead, which the Provisioner dedupes.
func (legacyProvisioning) Query(context.Context, string) (Receipt, bool, error) {
	return Receipt{}, false, fmt.Errorf("%w: this provisioner has no query", ErrTechnical)
}

// resultOf is the completeTask result of a receipt.
func resultOf(system string, r Receipt) map[string]string {
	m := make(map[string]string, len(r.Fields)+3)
	for k, v := range r.Fields {
		m[k] = v
	}
	if r.Ref != "" {
		m["externalRef"] = r.Ref
	}
	if _, ok := m["system"]; !ok {
		m["system"] = system
	}
	if r.Key != "" {
		m["idempotencyKey"] = r.Key
	}
	return m
}
