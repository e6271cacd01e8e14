// Package call defines a grain call as the rest of the system sees it: a
// command addressed to one grain, and its result. The gateway, the stream
// router and the workers speak this; actors/ carries it to the grain.
package call

import (
	"context"

	"github.com/grainline/grainline/grains"
)

// Command is one command addressed to one grain.
type Command struct {
	Tenant  grains.TenantID
	Kind    grains.Kind
	ID      string // aggregate id within the tenant
	Name    string // command wire name, e.g. "addLine"
	Payload []byte // the command's JSON body

	// IdempotencyKey, when set, makes the command apply at most once per
	// tenant: a repeat returns the first Result with Replayed set.
	IdempotencyKey string
	// IfMatch, when > 0, rejects the command with CodeRevisionMismatch unless
	// the aggregate is at exactly this revision.
	IfMatch int64

	Actor         string   // token subject, or a system name ("intake", "worker")
	Roles         []string // token roles
	CorrelationID string
	CausationID   string
}

// Result is what a grain answers once its commit is durable.
type Result struct {
	Revision int64  // the aggregate's revision after the command
	State    []byte // JSON view of the aggregate after the command
	Replayed bool   // true when served from the idempotency record
}

// Sender delivers commands to grains. Errors are *grains.Error for domain and
// request problems (their Code is stable); other errors are transient.
// Send must be safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, cmd Command) (Result, error)
}

// Reader reads the current state of one grain without changing it. A missing
// aggregate, or one of another tenant, is CodeNotFound.
type Reader interface {
	Get(ctx context.Context, tenant grains.TenantID, kind grains.Kind, id string) (Result, error)
}
