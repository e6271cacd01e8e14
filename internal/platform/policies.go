package platform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
)

// Approval policies live in the truth store as aggregates of kind
// "approvalPolicy", one set per tenant:
//
//   - "v<N>": version N, immutable once written (its commit expects
//     revision 0);
//   - "active": the pointer, whose revision is the active version and whose
//     state holds that version whole plus a summary of every version.
//
// A publish writes v<N+1>, then moves the pointer from N to N+1. The two
// are separate commits, so a publisher that finds v<N+1> already written
// (another publish in flight, or one that died between its commits) first
// moves the pointer to it on the other's behalf, then tries N+2: versions
// stay gapless and the pointer never skips one. Every write is audited.
const (
	policyKind     = "approvalPolicy"
	policyActiveID = "active"
)

// Audit actions of the policy store.
const (
	ActionPublishPolicy  = "publishApprovalPolicy"
	ActionActivatePolicy = "activateApprovalPolicy"
)

func policyKey(tenant grains.TenantID, id string) truth.Key {
	return truth.Key{Tenant: string(tenant), Kind: policyKind, ID: id}
}

func policyVersionKey(tenant grains.TenantID, version int) truth.Key {
	return policyKey(tenant, "v"+strconv.Itoa(version))
}

// PolicyVersion is one published version of a tenant's approval policy.
type PolicyVersion struct {
	Version     int             `json:"version"`
	Rules       []approval.Rule `json:"rules"`
	PublishedBy string          `json:"publishedBy"`
	PublishedAt time.Time       `json:"publishedAt"`
}

// PolicySummary describes one version in the list of versions.
type PolicySummary struct {
	Version     int       `json:"version"`
	PublishedBy string    `json:"publishedBy"`
	PublishedAt time.Time `json:"publishedAt"`
	RuleCount   int       `json:"ruleCount"`
}

// policyPointer is the state of the "active" aggregate.
type policyPointer struct {
	Active   PolicyVersion   `json:"active"`
	Versions []PolicySummary `json:"versions"`
}

// policies serves tenants' approval policies from the truth store and
// publishes new versions. The active pointer is read for every use, so a
// version published by any process applies at once; compiled policies are
// kept by tenant and version.
type policies struct {
	store truth.Store
	now   func() time.Time
	mu    sync.Mutex
	cache map[grains.TenantID]*approval.Policy
}

func newPolicies(store truth.Store) *policies {
	return &policies{store: store, now: time.Now, cache: map[grains.TenantID]*approval.Policy{}}
}

// pointer reads tenant's active pointer: its revision (the active version,
// 0 for none) and state.
func (p *policies) pointer(ctx context.Context, tenant grains.TenantID) (int64, policyPointer, error) {
	snap, err := p.store.Load(ctx, policyKey(tenant, policyActiveID))
	if errors.Is(err, truth.ErrNotFound) {
		return 0, policyPointer{}, nil
	}
	if err != nil {
		return 0, policyPointer{}, fmt.Errorf("platform: load approval policy pointer: %w", err)
	}
	var ptr policyPointer
	if err := json.Unmarshal(snap.State, &ptr); err != nil {
		return 0, policyPointer{}, fmt.Errorf("platform: decode approval policy pointer of %s: %w", tenant, err)
	}
	return snap.Revision, ptr, nil
}

// Policy implements actors.PolicySource: the active version, compiled; nil
// when the tenant has none.
func (p *policies) Policy(ctx context.Context, tenant grains.TenantID) (*approval.Policy, error) {
	rev, ptr, err := p.pointer(ctx, tenant)
	if err != nil || rev == 0 {
		return nil, err
	}
	p.mu.Lock()
	cached := p.cache[tenant]
	p.mu.Unlock()
	if cached != nil && int64(cached.Version) == rev {
		return cached, nil
	}
	pol, err := approval.Compile(ptr.Active.Version, ptr.Active.Rules)
	if err != nil {
		return nil, fmt.Errorf("platform: approval policy v%d of %s: %w", ptr.Active.Version, tenant, err)
	}
	p.mu.Lock()
	if c := p.cache[tenant]; c == nil || c.Version < pol.Version {
		p.cache[tenant] = pol
	}
	p.mu.Unlock()
	return pol, nil
}

// ListPolicies implements dispatch.Policies: {"active": N, "versions": [...]},
// newest first.
func (p *policies) ListPolicies(ctx context.Context, tenant grains.TenantID) ([]byte, error) {
	rev, ptr, err := p.pointer(ctx, tenant)
	if err != nil {
		return nil, err
	}
	versions := make([]PolicySummary, 0, len(ptr.Versions))
	for i := len(ptr.Versions) - 1; i >= 0; i-- {
		versions = append(versions, ptr.Versions[i])
	}
	return json.Marshal(struct {
		Active   int64           `json:"active"`
		Versions []PolicySummary `json:"versions"`
	}{rev, versions})
}

// policyDoc is a version as the API shows it.
type policyDoc struct {
	PolicyVersion
	Active bool `json:"active"`
}

// GetPolicy implements dispatch.Policies: one version, CodeNotFound when it
// was never activated.
func (p *policies) GetPolicy(ctx context.Context, tenant grains.TenantID, version int) ([]byte, error) {
	rev, _, err := p.pointer(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if version < 1 || int64(version) > rev {
		return nil, grains.Errorf(grains.CodeNotFound, "tenant %s has no approval policy version %d", tenant, version)
	}
	pv, err := p.version(ctx, tenant, version)
	if err != nil {
		return nil, err
	}
	return json.Marshal(policyDoc{PolicyVersion: pv, Active: int64(version) == rev})
}

func (p *policies) version(ctx context.Context, tenant grains.TenantID, version int) (PolicyVersion, error) {
	snap, err := p.store.Load(ctx, policyVersionKey(tenant, version))
	if err != nil {
		return PolicyVersion{}, fmt.Errorf("platform: load approval policy v%d of %s: %w", version, tenant, err)
	}
	var pv PolicyVersion
	if err := json.Unmarshal(snap.State, &pv); err != nil {
		return PolicyVersion{}, fmt.Errorf("platform: decode approval policy v%d of %s: %w", version, tenant, err)
	}
	return pv, nil
}

// publishAttempts bounds how often a publish loses the race for the next
// version number before it gives up with CodeConflict.
const publishAttempts = 8

// PublishPolicy implements dispatch.Policies: body is {"rules": [...]}; the
// rules must compile (every problem is a violation at /rules/<i>/<field>,
// CodeValidation). The new version becomes active; the reply is the version
// as GetPolicy shows it.
//
// With an idempotency key the version's commit records the key, the request
// hash and that reply (ADR 0004), so a repeat answers the first reply
// (Replayed) and publishes nothing, and the key reused for another request
// is CodeIdempotencyKeyReused. Policies are no grain, so the record is read
// before deciding; the store still guards two concurrent first attempts
// (only one commit records the key, the other replays it).
func (p *policies) PublishPolicy(ctx context.Context, tenant grains.TenantID, actor, correlationID, key string, body []byte) (dispatch.PolicyPublished, error) {
	hash := policyRequestHash(body)
	if key != "" {
		if out, found, err := p.replay(ctx, tenant, key, hash); err != nil || found {
			return out, err
		}
	}
	rules, err := decodeRules(body)
	if err != nil {
		return dispatch.PolicyPublished{}, err
	}
	pv, doc, err := p.publish(ctx, tenant, actor, correlationID, rules, key, hash)
	if errors.Is(err, truth.ErrIdempotencyConflict) {
		// A concurrent attempt with the same key recorded it first.
		out, found, err := p.replay(ctx, tenant, key, hash)
		if err == nil && !found {
			err = grains.Errorf(grains.CodeUnavailable, "approval policy publish: idempotency key %q is recorded but cannot be read yet; retry", key)
		}
		return out, err
	}
	if err != nil {
		return dispatch.PolicyPublished{}, err
	}
	return dispatch.PolicyPublished{Version: pv.Version, Doc: doc}, nil
}

// policyPublishCommand is the command name of a publish in idempotency
// records.
const policyPublishCommand = "publish"

// policyRequestHash is the request hash of a publish: SHA-256 over kind, id
// and command (NUL-separated) and the raw body, as the grains hash theirs.
func policyRequestHash(body []byte) []byte {
	h := sha256.New()
	for _, part := range []string{policyKind, "", policyPublishCommand} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(body)
	return h.Sum(nil)
}

// replay answers a publish whose key is recorded: the first reply when the
// record is of the same request, CodeIdempotencyKeyReused when it is not.
// found is false when the key is not recorded. A version published under the
// key whose activation did not happen (the publisher stopped between its
// two commits) is activated first, so a replayed version is active or
// superseded, never pending.
func (p *policies) replay(ctx context.Context, tenant grains.TenantID, key string, hash []byte) (dispatch.PolicyPublished, bool, error) {
	rec, err := p.store.Idempotency(ctx, string(tenant), key)
	if errors.Is(err, truth.ErrNotFound) {
		return dispatch.PolicyPublished{}, false, nil
	}
	if err != nil {
		return dispatch.PolicyPublished{}, false, grains.Errorf(grains.CodeUnavailable, "approval policy publish: reading idempotency key: %v", err)
	}
	version, verr := strconv.Atoi(strings.TrimPrefix(rec.Aggregate.ID, "v"))
	if rec.Aggregate.Kind != policyKind || rec.Command != policyPublishCommand || verr != nil || !bytes.Equal(rec.RequestHash, hash) {
		return dispatch.PolicyPublished{}, true, grains.Errorf(grains.CodeIdempotencyKeyReused,
			"idempotency key was used for a different request")
	}
	rev, ptr, err := p.pointer(ctx, tenant)
	if err != nil {
		return dispatch.PolicyPublished{}, true, err
	}
	if rev == int64(version)-1 {
		pv, err := p.version(ctx, tenant, version)
		if err != nil {
			return dispatch.PolicyPublished{}, true, err
		}
		if err := p.activate(ctx, tenant, rev, ptr, pv, pv.PublishedBy, ""); err != nil {
			return dispatch.PolicyPublished{}, true, err
		}
	}
	return dispatch.PolicyPublished{Version: version, Doc: rec.Response, Replayed: true}, true, nil
}

// decodeRules reads a publish body and checks that its rules compile.
func decodeRules(body []byte) ([]approval.Rule, error) {
	var req struct {
		Rules *[]approval.Rule `json:"rules"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, grains.Errorf(grains.CodeBadRequest, "the body must be {\"rules\": [{\"name\", \"expr\", \"level\"}, ...]}: %v", err)
	}
	if req.Rules == nil {
		return nil, grains.Violations{{Pointer: "/rules", Code: "required", Message: "rules are required (an empty list requires no approval)"}}.Err("publishApprovalPolicy")
	}
	rules := *req.Rules
	if _, err := approval.Compile(1, rules); err != nil {
		var pe *approval.PolicyError
		if !errors.As(err, &pe) {
			return nil, err
		}
		vs := make(grains.Violations, 0, len(pe.Problems))
		for _, pr := range pe.Problems {
			ptr := "/rules"
			if pr.Rule >= 0 {
				ptr = fmt.Sprintf("/rules/%d/%s", pr.Rule, pr.Field)
			}
			vs = append(vs, grains.Violation{Pointer: ptr, Code: pr.Code, Message: pr.Message})
		}
		return nil, vs.Err("publishApprovalPolicy")
	}
	if rules == nil {
		rules = []approval.Rule{}
	}
	return rules, nil
}

// publish writes rules as the tenant's next version and activates it; the
// reply is the version as GetPolicy shows it. With an idempotency key
// (idemKey, with the request hash) the version's commit records the key and
// the reply; ErrIdempotencyConflict when the key is recorded already.
func (p *policies) publish(ctx context.Context, tenant grains.TenantID, actor, correlationID string, rules []approval.Rule, idemKey string, hash []byte) (PolicyVersion, []byte, error) {
	for range publishAttempts {
		rev, ptr, err := p.pointer(ctx, tenant)
		if err != nil {
			return PolicyVersion{}, nil, err
		}
		pv := PolicyVersion{Version: int(rev) + 1, Rules: rules, PublishedBy: actor, PublishedAt: truth.AuditTime(p.now())}
		doc, err := json.Marshal(policyDoc{PolicyVersion: pv, Active: true})
		if err != nil {
			return PolicyVersion{}, nil, err
		}
		var idem *truth.Idempotency
		if idemKey != "" {
			idem = &truth.Idempotency{
				Tenant: string(tenant), Key: idemKey, Aggregate: policyVersionKey(tenant, pv.Version),
				Command: policyPublishCommand, RequestHash: hash, Revision: 1, Response: doc, CreatedAt: pv.PublishedAt,
			}
		}
		err = p.writeVersion(ctx, tenant, pv, correlationID, idem)
		switch {
		case err == nil:
			if err := p.activate(ctx, tenant, rev, ptr, pv, actor, correlationID); err != nil {
				return PolicyVersion{}, nil, err
			}
			return pv, doc, nil
		case errors.Is(err, truth.ErrRevisionConflict):
			// Version rev+1 exists: activate it for whoever wrote it,
			// then try the next number.
			other, err := p.version(ctx, tenant, pv.Version)
			if err != nil {
				return PolicyVersion{}, nil, err
			}
			if err := p.activate(ctx, tenant, rev, ptr, other, actor, correlationID); err != nil {
				return PolicyVersion{}, nil, err
			}
		default:
			return PolicyVersion{}, nil, err
		}
	}
	return PolicyVersion{}, nil, grains.Errorf(grains.CodeConflict, "approval policies of tenant %s are being published concurrently; retry", tenant)
}

// writeVersion writes pv under its own key, with idem when not nil;
// ErrRevisionConflict when the version exists, ErrIdempotencyConflict when
// idem's key is recorded.
func (p *policies) writeVersion(ctx context.Context, tenant grains.TenantID, pv PolicyVersion, correlationID string, idem *truth.Idempotency) error {
	state, err := json.Marshal(pv)
	if err != nil {
		return err
	}
	key := policyVersionKey(tenant, pv.Version)
	return p.commit(ctx, truth.Commit{
		Snapshot:    truth.Snapshot{Key: key, Revision: 1, State: state, UpdatedAt: pv.PublishedAt},
		Idempotency: idem,
		Audit: []truth.Audit{{
			Tenant: string(tenant), Aggregate: key, Revision: 1, Actor: pv.PublishedBy, Action: ActionPublishPolicy,
			Reason:        fmt.Sprintf("approval policy version %d with %d rules", pv.Version, len(pv.Rules)),
			CorrelationID: correlationID, At: pv.PublishedAt,
		}},
	})
}

// activate moves the pointer from rev to pv (which must be version rev+1).
// Another publisher having moved it already is not an error: only pv can
// follow rev.
func (p *policies) activate(ctx context.Context, tenant grains.TenantID, rev int64, ptr policyPointer, pv PolicyVersion, actor, correlationID string) error {
	next := policyPointer{Active: pv, Versions: append(append([]PolicySummary(nil), ptr.Versions...), PolicySummary{
		Version: pv.Version, PublishedBy: pv.PublishedBy, PublishedAt: pv.PublishedAt, RuleCount: len(pv.Rules),
	})}
	state, err := json.Marshal(next)
	if err != nil {
		return err
	}
	key := policyKey(tenant, policyActiveID)
	now := truth.AuditTime(p.now())
	err = p.commit(ctx, truth.Commit{
		ExpectedRevision: rev,
		Snapshot:         truth.Snapshot{Key: key, Revision: rev + 1, State: state, UpdatedAt: now},
		Audit: []truth.Audit{{
			Tenant: string(tenant), Aggregate: key, Revision: rev + 1, Actor: actor, Action: ActionActivatePolicy,
			Reason: fmt.Sprintf("approval policy version %d is active", pv.Version), CorrelationID: correlationID, At: now,
		}},
	})
	if errors.Is(err, truth.ErrRevisionConflict) {
		return nil
	}
	return err
}

func (p *policies) commit(ctx context.Context, c truth.Commit) error {
	res, err := p.store.Commit(ctx, []truth.Commit{c})
	if err != nil {
		return fmt.Errorf("platform: approval policy: %w", err)
	}
	return res[0]
}

// SeedPolicy makes rules version 1 of tenant's approval policy, published
// by "seed", unless the tenant has a policy.
func SeedPolicy(ctx context.Context, store truth.Store, tenant grains.TenantID, rules []approval.Rule, now time.Time) error {
	p := newPolicies(store)
	p.now = func() time.Time { return now }
	rev, ptr, err := p.pointer(ctx, tenant)
	if err != nil || rev > 0 {
		return err
	}
	pv := PolicyVersion{Version: 1, Rules: rules, PublishedBy: "seed", PublishedAt: truth.AuditTime(now)}
	if err := p.writeVersion(ctx, tenant, pv, "seed", nil); err != nil && !errors.Is(err, truth.ErrRevisionConflict) {
		return fmt.Errorf("platform: seed approval policy: %w", err)
	}
	if pv, err = p.version(ctx, tenant, 1); err != nil {
		return fmt.Errorf("platform: seed approval policy: %w", err)
	}
	if err := p.activate(ctx, tenant, 0, ptr, pv, "seed", "seed"); err != nil {
		return fmt.Errorf("platform: seed approval policy: %w", err)
	}
	return nil
}
