package truth

import (
	"context"
	"fmt"
)

// AuditAppender writes audit-only records: facts worth keeping that change
// no aggregate, such as a command refused for authority. Both adapters
// implement it. The records join the tenant's chain exactly as records
// written by Commit do (same Seq and PrevHash rules, same serialisation
// against concurrent commits), so verification cannot tell them apart by
// position; their content (Action, Reason, Detail) tells what they are.
// It is not on the path of a successful command.
type AuditAppender interface {
	// AppendAudit chains records after their tenants' heads, in order, in
	// one durable write, and returns them as stored (At truncated, Seq,
	// PrevHash and Hash set; chain fields given are ignored). Each record
	// must pass ValidateAudit; an invalid one fails the whole call with an
	// error wrapping ErrInvalidCommit and writes nothing. No snapshot,
	// event, idempotency record or timer changes. Safe for concurrent use.
	AppendAudit(ctx context.Context, records []Audit) ([]Audit, error)
}

// ValidateAudit checks an audit-only record: a tenant, an aggregate kind
// and id, an aggregate of that tenant (Aggregate.Tenant empty is taken as
// Tenant), a non-negative revision and an action. The error wraps
// ErrInvalidCommit.
func ValidateAudit(a *Audit) error {
	switch {
	case a.Tenant == "" || a.Aggregate.Kind == "" || a.Aggregate.ID == "":
		return fmt.Errorf("%w: audit record %q/%q/%q has an empty part", ErrInvalidCommit, a.Tenant, a.Aggregate.Kind, a.Aggregate.ID)
	case a.Aggregate.Tenant != "" && a.Aggregate.Tenant != a.Tenant:
		return fmt.Errorf("%w: audit record of tenant %q names an aggregate of tenant %q", ErrInvalidCommit, a.Tenant, a.Aggregate.Tenant)
	case a.Revision < 0:
		return fmt.Errorf("%w: audit record revision %d is negative", ErrInvalidCommit, a.Revision)
	case a.Action == "":
		return fmt.Errorf("%w: audit record without an action", ErrInvalidCommit)
	}
	return nil
}

// AuditTrailReader reads one aggregate's audit records. Both adapters
// implement it, through an index on the aggregate.
type AuditTrailReader interface {
	// AuditTrail returns the audit records of key's aggregate (including
	// audit-only records), in chain order, with their chain fields.
	AuditTrail(ctx context.Context, key Key) ([]Audit, error)
}
