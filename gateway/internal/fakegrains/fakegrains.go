// Package fakegrains is an in-memory stand-in for the grain runtime, for
// gateway tests. It keeps each aggregate's JSON state per tenant, kind and
// id, runs a small quote/order state machine, and honours idempotency keys
// (per tenant) and If-Match revisions the way call.Sender promises. An
// accepted quote becomes order "o-<quote id>", visible to OrderForQuote.
package fakegrains

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/grains"
)

type key struct {
	tenant grains.TenantID
	kind   grains.Kind
	id     string
}

type aggregate struct {
	revision int64
	state    map[string]any
}

type idemRecord struct {
	fingerprint string
	result      call.Result
}

// Grains implements call.Sender, call.Reader and the gateway's order lookup.
// It is safe for concurrent use.
type Grains struct {
	mu      sync.Mutex
	aggs    map[key]*aggregate
	idem    map[grains.TenantID]map[string]idemRecord
	orders  map[key]string // quote key -> order id
	sent    []call.Command
	hook    func(context.Context, call.Command) error
	nextSeq int
}

var (
	_ call.Sender = (*Grains)(nil)
	_ call.Reader = (*Grains)(nil)
)

// New returns an empty set of grains.
func New() *Grains {
	return &Grains{
		aggs:   map[key]*aggregate{},
		idem:   map[grains.TenantID]map[string]idemRecord{},
		orders: map[key]string{},
	}
}

// SetHook installs f to run at the start of every Send, outside the lock;
// an error from f is returned as Send's error. Tests use it to inject faults
// and to hold commands in flight.
func (g *Grains) SetHook(f func(context.Context, call.Command) error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hook = f
}

// Sent returns a copy of every command Send received, in order.
func (g *Grains) Sent() []call.Command {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]call.Command(nil), g.sent...)
}

// Put stores state as the aggregate's state at revision 1 (or one past its
// current revision).
func (g *Grains) Put(tenant grains.TenantID, kind grains.Kind, id string, state map[string]any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := key{tenant, kind, id}
	a := g.aggs[k]
	if a == nil {
		a = &aggregate{}
		g.aggs[k] = a
	}
	a.revision++
	a.state = state
}

// Get implements call.Reader.
func (g *Grains) Get(ctx context.Context, tenant grains.TenantID, kind grains.Kind, id string) (call.Result, error) {
	if err := ctx.Err(); err != nil {
		return call.Result{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.aggs[key{tenant, kind, id}]
	if a == nil {
		return call.Result{}, grains.Errorf(grains.CodeNotFound, "%s %s not found", kind, id)
	}
	return call.Result{Revision: a.revision, State: mustJSON(a.state)}, nil
}

// OrderForQuote returns the order an accepted quote became.
func (g *Grains) OrderForQuote(ctx context.Context, tenant grains.TenantID, quoteID string) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	id, ok := g.orders[key{tenant, grains.KindQuote, quoteID}]
	return id, ok, nil
}

// Send implements call.Sender.
func (g *Grains) Send(ctx context.Context, cmd call.Command) (call.Result, error) {
	g.mu.Lock()
	g.sent = append(g.sent, cmd)
	hook := g.hook
	g.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, cmd); err != nil {
			return call.Result{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return call.Result{}, err
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	fp := fmt.Sprintf("%s/%s/%s/%s", cmd.Kind, cmd.ID, cmd.Name, cmd.Payload)
	if cmd.IdempotencyKey != "" {
		if rec, ok := g.idem[cmd.Tenant][cmd.IdempotencyKey]; ok {
			if rec.fingerprint != fp {
				return call.Result{}, grains.Errorf(grains.CodeIdempotencyKeyReused, "idempotency key was used for a different request")
			}
			r := rec.result
			r.Replayed = true
			return r, nil
		}
	}
	var payload map[string]any
	if err := json.Unmarshal(cmd.Payload, &payload); err != nil {
		return call.Result{}, grains.Errorf(grains.CodeBadRequest, "payload: %v", err)
	}
	k := key{cmd.Tenant, cmd.Kind, cmd.ID}
	a := g.aggs[k]
	if cmd.Name == "create" {
		if a != nil {
			return call.Result{}, grains.Errorf(grains.CodeAlreadyExists, "%s %s already exists", cmd.Kind, cmd.ID)
		}
	} else if a == nil {
		return call.Result{}, grains.Errorf(grains.CodeNotFound, "%s %s not found", cmd.Kind, cmd.ID)
	}
	if cmd.IfMatch > 0 && (a == nil || a.revision != cmd.IfMatch) {
		return call.Result{}, grains.Errorf(grains.CodeRevisionMismatch, "revision is not %d", cmd.IfMatch)
	}
	next, err := g.decide(cmd, a, payload)
	if err != nil {
		return call.Result{}, err
	}
	if a == nil {
		a = &aggregate{}
		g.aggs[k] = a
	}
	a.revision++
	a.state = next
	res := call.Result{Revision: a.revision, State: mustJSON(next)}
	if cmd.IdempotencyKey != "" {
		if g.idem[cmd.Tenant] == nil {
			g.idem[cmd.Tenant] = map[string]idemRecord{}
		}
		g.idem[cmd.Tenant][cmd.IdempotencyKey] = idemRecord{fingerprint: fp, result: res}
	}
	return res, nil
}

// decide returns the next state of a (nil for create), under g.mu.
func (g *Grains) decide(cmd call.Command, a *aggregate, p map[string]any) (map[string]any, error) {
	var s map[string]any
	if a != nil {
		s = clone(a.state)
	}
	status, _ := s["status"].(string)
	from := func(want ...string) error {
		for _, w := range want {
			if status == w {
				return nil
			}
		}
		return grains.Errorf(grains.CodeInvalidTransition, "cannot %s a %s %s", cmd.Name, status, cmd.Kind)
	}
	switch cmd.Kind {
	case grains.KindQuote:
		switch cmd.Name {
		case "create":
			cur, _ := p["currency"].(string)
			if len(cur) != 3 {
				return nil, &grains.Error{Code: grains.CodeValidation, Message: "invalid quote",
					Violations: []grains.Violation{{Pointer: "/currency", Code: "required", Message: "a 3-letter currency is required"}}}
			}
			return map[string]any{"id": cmd.ID, "status": "draft", "customerId": p["customerId"],
				"customerName": p["customerName"], "currency": cur, "lines": []any{}}, nil
		case "addLine":
			if err := from("draft", "priced"); err != nil {
				return nil, err
			}
			g.nextSeq++
			line := clone(p)
			line["lineId"] = fmt.Sprintf("l-%d", g.nextSeq)
			s["lines"] = append(s["lines"].([]any), line)
			s["status"] = "draft"
		case "removeLine":
			if err := from("draft", "priced"); err != nil {
				return nil, err
			}
			lines := s["lines"].([]any)
			kept := []any{}
			for _, l := range lines {
				if l.(map[string]any)["lineId"] != p["lineId"] {
					kept = append(kept, l)
				}
			}
			if len(kept) == len(lines) {
				return nil, grains.Errorf(grains.CodeNotFound, "no line %v", p["lineId"])
			}
			s["lines"] = kept
			s["status"] = "draft"
		case "price":
			if err := from("draft", "priced"); err != nil {
				return nil, err
			}
			s["status"] = "priced"
		case "submit":
			if err := from("priced"); err != nil {
				return nil, err
			}
			s["status"] = "submitted"
		case "approve":
			if err := from("submitted"); err != nil {
				return nil, err
			}
			s["status"] = "approved"
		case "reject":
			if err := from("submitted"); err != nil {
				return nil, err
			}
			s["status"] = "rejected"
			s["reason"] = p["reason"]
		case "accept":
			if err := from("approved"); err != nil {
				return nil, err
			}
			s["status"] = "accepted"
			orderID := "o-" + cmd.ID
			g.aggs[key{cmd.Tenant, grains.KindOrder, orderID}] = &aggregate{revision: 1,
				state: map[string]any{"id": orderID, "quoteId": cmd.ID, "status": "open"}}
			g.orders[key{cmd.Tenant, grains.KindQuote, cmd.ID}] = orderID
		case "cancel":
			if err := from("draft", "priced", "submitted", "approved"); err != nil {
				return nil, err
			}
			s["status"] = "cancelled"
		case "attachDocument":
			// As the quote grain: approved quotes, the current revision.
			if err := from("approved"); err != nil {
				return nil, err
			}
			rev, _ := s["revision"].(float64)
			if p["revision"] != max(rev, 1) {
				return nil, grains.Errorf(grains.CodeStaleRevision, "quote %s is at revision %v, not %v", cmd.ID, max(rev, 1), p["revision"])
			}
			s["document"] = map[string]any{"revision": p["revision"], "sha256": p["sha256"], "artifactId": p["artifactId"],
				"mediaType": p["mediaType"], "attachedBy": cmd.Actor, "attachedAt": "2026-01-02T10:00:00Z"}
		default:
			return nil, grains.Errorf(grains.CodeBadRequest, "unknown command %q", cmd.Name)
		}
	case grains.KindOrder:
		switch cmd.Name {
		case "cancel":
			if err := from("open"); err != nil {
				return nil, err
			}
			s["status"] = "cancelled"
			s["reason"] = p["reason"]
			s["cancellation"] = map[string]any{"id": "co-" + cmd.ID, "state": "done", "reason": p["reason"],
				"requestedBy": cmd.Actor, "requestedAt": "2026-01-02T10:00:00Z", "completedAt": "2026-01-02T10:00:00Z"}
		case "completeTask", "failTask":
			// As the order grain, for a requested task: done or failed;
			// the same result again is a no-op.
			want, other := "done", "failed"
			if cmd.Name == "failTask" {
				want, other = "failed", "done"
			}
			tasks, _ := s["tasks"].([]any)
			found := false
			for _, t := range tasks {
				tm := t.(map[string]any)
				if tm["taskId"] != p["taskId"] {
					continue
				}
				found = true
				if tm["status"] == other {
					return nil, grains.Errorf(grains.CodeInvalidTransition, "task %v is already %s", p["taskId"], other)
				}
				tm["status"] = want
			}
			if !found {
				return nil, &grains.Error{Code: grains.CodeValidation, Message: "no such task",
					Violations: []grains.Violation{{Pointer: "/taskId", Code: "unknown", Message: "no such task in this order"}}}
			}
		default:
			return nil, grains.Errorf(grains.CodeBadRequest, "unknown command %q", cmd.Name)
		}
	default:
		return nil, grains.Errorf(grains.CodeNotFound, "unknown kind %q", cmd.Kind)
	}
	return s, nil
}

func clone(m map[string]any) map[string]any {
	var out map[string]any
	if err := json.Unmarshal(mustJSON(m), &out); err != nil || out == nil {
		return map[string]any{}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}
