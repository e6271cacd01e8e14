package dispatch

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
)

// Policies serves and publishes a tenant's approval policies as JSON. It
// must be safe for concurrent use.
type Policies interface {
	// ListPolicies answers {"active": N, "versions": [...]}.
	ListPolicies(ctx context.Context, tenant grains.TenantID) ([]byte, error)
	// GetPolicy answers one version; CodeNotFound when there is none.
	GetPolicy(ctx context.Context, tenant grains.TenantID, version int) ([]byte, error)
	// PublishPolicy publishes body ({"rules": [...]}) as the next version,
	// made active, by actor; CodeValidation when the rules do not compile.
	// With an idempotency key (already in the client namespace, ClientKey)
	// a repeat of the same body answers the first publish's reply with
	// Replayed set and publishes nothing; the key used before for another
	// request is CodeIdempotencyKeyReused.
	PublishPolicy(ctx context.Context, tenant grains.TenantID, actor, correlationID, idempotencyKey string, body []byte) (PolicyPublished, error)
}

// PolicyPublished is the answer of Policies.PublishPolicy.
type PolicyPublished struct {
	Version  int
	Doc      []byte // the version as GetPolicy showed it when it was published
	Replayed bool   // the answer of an earlier publish with the same key
}

// KindApprovalPolicy addresses the approval policies in Request.Kind (they
// are not a grain): commands "list", "get" (ID: the version) and "publish".
const KindApprovalPolicy grains.Kind = "approvalPolicy"

// CommandPublish publishes an approval policy version; KindApprovalPolicy
// also takes CommandList and CommandGet.
const CommandPublish = "publish"

// Roles the gateway itself checks (grain commands are checked by the
// grains).
const (
	// RolePolicyAdmin may publish approval policies.
	RolePolicyAdmin = "policy-admin"
	// RoleAuditor may read (approval policies, quote evidence) and change
	// nothing.
	RoleAuditor = "auditor"
	// RoleSales is the quote grain's sales role.
	RoleSales = "sales"
)

// PolicyHref is the HTTP path of an approval policy version.
func PolicyHref(version int) string { return "/v1/approval-policies/" + strconv.Itoa(version) }

// mayRead reports whether roles may read approval policies and evidence:
// sales, any approver level, policy-admin or auditor.
func mayRead(roles []string) bool {
	return approval.Authority(roles) >= 1 || slices.Contains(roles, RoleSales) ||
		slices.Contains(roles, RolePolicyAdmin) || slices.Contains(roles, RoleAuditor)
}

func (d *Dispatcher) policy(ctx context.Context, req Request) Reply {
	if d.deps.Policies == nil {
		return Fail(grains.Errorf(grains.CodeUnavailable, "no approval policy store is configured"), req.Instance)
	}
	tenant := req.Principal.Tenant
	switch req.Command {
	case CommandList, CommandGet:
		if !mayRead(req.Principal.Roles) {
			return Fail(grains.Errorf(grains.CodeForbidden, "reading approval policies requires role sales, approver, %s or %s", RolePolicyAdmin, RoleAuditor), req.Instance)
		}
		if req.Command == CommandList {
			body, err := d.deps.Policies.ListPolicies(ctx, tenant)
			if err != nil {
				return Fail(err, req.Instance)
			}
			return ok(http.StatusOK, body, "", 0)
		}
		v, err := strconv.Atoi(req.ID)
		if err != nil || v < 1 || strconv.Itoa(v) != req.ID {
			return Fail(grains.Errorf(grains.CodeNotFound, "no approval policy version %q (versions are 1, 2, ...)", req.ID), req.Instance)
		}
		body, err := d.deps.Policies.GetPolicy(ctx, tenant, v)
		if err != nil {
			return Fail(err, req.Instance)
		}
		return ok(http.StatusOK, body, req.ID, 0)
	case CommandPublish:
		if !slices.Contains(req.Principal.Roles, RolePolicyAdmin) {
			return Fail(grains.Errorf(grains.CodeForbidden, "publishing an approval policy requires role %s", RolePolicyAdmin), req.Instance)
		}
		payload, err := ObjectPayload(req.Payload)
		if err != nil {
			return Fail(err, req.Instance)
		}
		pub, err := d.deps.Policies.PublishPolicy(ctx, tenant, req.Principal.Subject, req.CorrelationID, ClientKey(req.IdempotencyKey), payload)
		if err != nil {
			return Fail(err, req.Instance)
		}
		r := ok(http.StatusCreated, pub.Doc, strconv.Itoa(pub.Version), 0)
		r.Location = PolicyHref(pub.Version)
		r.Replayed = pub.Replayed
		return r
	}
	return Fail(grains.Errorf(grains.CodeNotFound, "no command %q on approval policies", req.Command), req.Instance)
}
