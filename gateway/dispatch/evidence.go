package dispatch

import (
	"context"
	"net/http"
	"slices"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
)

// Evidence serves the evidence bundle of a quote as JSON
// (internal/evidence). It must be safe for concurrent use.
type Evidence interface {
	EvidenceJSON(ctx context.Context, tenant grains.TenantID, quoteID string) ([]byte, error)
}

// CommandEvidence reads a quote's evidence bundle: quote.evidence over
// NATS, GET /v1/quotes/{id}/evidence over HTTP.
const CommandEvidence = "evidence"

// mayReadEvidence reports whether roles may read evidence: sales, any
// approver level or auditor.
func mayReadEvidence(roles []string) bool {
	return approval.Authority(roles) >= 1 || slices.Contains(roles, RoleSales) || slices.Contains(roles, RoleAuditor)
}

func (d *Dispatcher) evidence(ctx context.Context, req Request) Reply {
	if d.deps.Evidence == nil {
		return Fail(grains.Errorf(grains.CodeUnavailable, "no evidence source is configured"), req.Instance)
	}
	if !mayReadEvidence(req.Principal.Roles) {
		return Fail(grains.Errorf(grains.CodeForbidden, "reading quote evidence requires role sales, approver or %s", RoleAuditor), req.Instance)
	}
	if err := ValidID(req.ID); err != nil {
		return Fail(err, req.Instance)
	}
	body, err := d.deps.Evidence.EvidenceJSON(ctx, req.Principal.Tenant, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, req.ID, 0)
}
