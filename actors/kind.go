package actors

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/proto/wirepb"
)

// Kind is one grain kind the runtime can host: a pure grains.Behavior plus
// what the runtime needs to make its decisions durable.
type Kind interface {
	Name() grains.Kind
	// handler returns the state machine of one activation.
	handler(key truth.Key, rt *runtime) activation
	// options are what the kind asks of the runtime.
	options() kindOptions
}

// activation is the runtime side of one grain activation.
type activation interface {
	handle(ctx context.Context, cmd *wirepb.GrainCommand) *wirepb.GrainReply
	// exists reports whether the activation holds a created aggregate; one
	// that does not is not kept around.
	exists() bool
}

// TopicsFunc names the topics an event is published to. The first is the
// aggregate's own event stream; further topics get a copy (e.g. a task
// queue) with event id "<id>#<topic>".
type TopicsFunc func(eventName string) []string

// KindOption tunes a kind.
type KindOption func(*kindOptions)

type kindOptions struct {
	needsCatalog   bool
	policyCommands []string
	producer       string
}

// WithCatalog makes the runtime pass the tenant's catalog in grains.Env: the
// version the state is pinned to (Behavior.CatalogVersion), else the active
// one.
func WithCatalog() KindOption { return func(o *kindOptions) { o.needsCatalog = true } }

// WithPolicy makes the runtime pass the tenant's approval policy in force
// in grains.Env for the named commands only. It is read from the node's
// PolicySource for each of them, so a policy published a moment ago
// applies to the next one; other commands decide without it (env.Policy
// nil), which keeps the read off their path.
func WithPolicy(commands ...string) KindOption {
	return func(o *kindOptions) { o.policyCommands = append(o.policyCommands, commands...) }
}

// NewKind binds behavior to the runtime; topics maps its events to topics.
func NewKind[S any](behavior grains.Behavior[S], topics TopicsFunc, opts ...KindOption) Kind {
	o := kindOptions{producer: "grainline/" + string(behavior.Kind)}
	for _, opt := range opts {
		opt(&o)
	}
	return &kind[S]{b: behavior, topics: topics, opts: o}
}

type kind[S any] struct {
	b      grains.Behavior[S]
	topics TopicsFunc
	opts   kindOptions
}

func (k *kind[S]) Name() grains.Kind { return k.b.Kind }

func (k *kind[S]) options() kindOptions { return k.opts }

func (k *kind[S]) handler(key truth.Key, rt *runtime) activation {
	return &grain[S]{kind: k, key: key, rt: rt}
}

// CatalogSource returns a published version of a tenant's catalog: version
// 0 is the active one. It returns nil and no error when the tenant has no
// active catalog, or no such published version (the domain decides what that
// means). Safe for concurrent use.
type CatalogSource interface {
	Catalog(ctx context.Context, tenant grains.TenantID, version int) (*catalog.Catalog, error)
}

// PolicySource returns a tenant's approval policy in force, or nil and no
// error when the tenant has none (the domain decides what that means). Safe
// for concurrent use.
type PolicySource interface {
	Policy(ctx context.Context, tenant grains.TenantID) (*approval.Policy, error)
}

// Loader reads what an activation needs from the truth store.
type Loader interface {
	Load(ctx context.Context, key truth.Key) (truth.Snapshot, error)
	Idempotency(ctx context.Context, tenant, key string) (truth.Idempotency, error)
}

// runtime is what every activation on a node shares.
type runtime struct {
	store     Loader
	committer *Committer
	catalogs  CatalogSource
	policies  PolicySource
	now       func() time.Time
	log       *slog.Logger
	// timers, when set, is woken by commits that set a timer due soon.
	timers *Timers
	// audits records commands refused for authority; nil when the store
	// cannot append audit-only records.
	audits truth.AuditAppender
	// committed, when set, observes the events of each durable commit.
	committed func(key truth.Key, events []grains.Event)
}

// maxConflictRetries bounds how often a command is re-decided after losing a
// revision race to another activation.
const maxConflictRetries = 3

// grain is one activation of an aggregate: its state stays in memory between
// commands and is reloaded only when it may be stale.
type grain[S any] struct {
	kind     *kind[S]
	key      truth.Key
	rt       *runtime
	loaded   bool
	state    S
	revision int64
}

func (g *grain[S]) load(ctx context.Context) error {
	snap, err := g.rt.store.Load(ctx, g.key)
	var zero S
	switch {
	case errors.Is(err, truth.ErrNotFound):
		g.state, g.revision = zero, 0
	case err != nil:
		return err
	default:
		var s S
		if err := json.Unmarshal(snap.State, &s); err != nil {
			return fmt.Errorf("actors: decode snapshot %v: %w", g.key, err)
		}
		g.state, g.revision = s, snap.Revision
	}
	g.loaded = true
	return nil
}

func (g *grain[S]) exists() bool { return g.loaded && g.kind.b.Exists(g.state) }

func (g *grain[S]) handle(ctx context.Context, cmd *wirepb.GrainCommand) *wirepb.GrainReply {
	fresh := !g.loaded // the state comes from the store in this call
	if !g.loaded {
		if err := g.load(ctx); err != nil {
			g.rt.log.Error("load snapshot", "tenant_id", g.key.Tenant, "kind", g.key.Kind, "id", g.key.ID, "error", err)
			return errorReply(grains.Errorf(grains.CodeUnavailable, "state could not be loaded; retry later"))
		}
	}
	if cmd.ReadOnly {
		if !g.kind.b.Exists(g.state) {
			return errorReply(grains.Errorf(grains.CodeNotFound, "%s %s not found", g.key.Kind, g.key.ID))
		}
		return g.reply(false)
	}

	// The idempotency record is read only where the answer could differ
	// from the first result: when this command would fail or do nothing, or
	// when its commit finds the key taken. A repeat that would succeed
	// again is caught by the commit itself, which writes the key atomically.
	var reqHash []byte
	if cmd.IdempotencyKey != "" {
		reqHash = requestHash(cmd)
	}
	firstResult := func(otherwise *wirepb.GrainReply) *wirepb.GrainReply {
		if cmd.IdempotencyKey == "" {
			return otherwise
		}
		rec, err := g.rt.store.Idempotency(ctx, g.key.Tenant, cmd.IdempotencyKey)
		switch {
		case err == nil:
			return replay(rec, g.key, reqHash)
		case errors.Is(err, truth.ErrNotFound):
			return otherwise
		default:
			return errorReply(grains.Errorf(grains.CodeUnavailable, "idempotency record could not be read; retry later"))
		}
	}

	command, err := g.kind.b.DecodeCommand(cmd.Name, cmd.Payload)
	if err != nil {
		return errorReply(err)
	}
	env := grains.Env{
		Tenant:        grains.TenantID(g.key.Tenant),
		ID:            g.key.ID,
		Actor:         cmd.Actor,
		Roles:         cmd.Roles,
		CorrelationID: cmd.CorrelationId,
	}
	if g.kind.opts.needsCatalog {
		version := 0
		if g.kind.b.CatalogVersion != nil {
			version = g.kind.b.CatalogVersion(g.state)
		}
		cat, err := g.rt.catalogs.Catalog(ctx, env.Tenant, version)
		if err != nil {
			g.rt.log.Error("load catalog", "tenant_id", g.key.Tenant, "error", err)
			return errorReply(grains.Errorf(grains.CodeUnavailable, "catalog could not be read; retry later"))
		}
		env.Catalog = cat
	}
	if slices.Contains(g.kind.opts.policyCommands, cmd.Name) {
		pol, err := g.rt.policies.Policy(ctx, env.Tenant)
		if err != nil {
			g.rt.log.Error("load approval policy", "tenant_id", g.key.Tenant, "error", err)
			return errorReply(grains.Errorf(grains.CodeUnavailable, "approval policy could not be read; retry later"))
		}
		env.Policy = pol
	}

	for attempt := 0; ; attempt++ {
		if cmd.IfMatch > 0 && cmd.IfMatch != g.revision {
			return firstResult(errorReply(grains.Errorf(grains.CodeRevisionMismatch,
				"%s %s is at revision %d, not %d", g.key.Kind, g.key.ID, g.revision, cmd.IfMatch)))
		}
		env.Now = g.rt.now()
		events, err := g.kind.b.Decide(g.state, command, env)
		if err != nil && !fresh {
			// A rejection is only as good as the state behind it: another
			// activation (during a membership change) may have moved the
			// aggregate on. Check the store once before refusing.
			fresh = true
			rev := g.revision
			if lerr := g.load(ctx); lerr != nil {
				g.loaded = false
				return errorReply(grains.Errorf(grains.CodeUnavailable, "state could not be reloaded; retry later"))
			}
			if g.revision != rev {
				continue
			}
		}
		if err != nil {
			rep := firstResult(errorReply(err))
			if auditedRefusals[grains.Code(rep.ErrorCode)] {
				g.auditRefusal(ctx, cmd, grains.Code(rep.ErrorCode), rep.ErrorMessage, env.Now)
			}
			return rep
		}
		if len(events) == 0 {
			return firstResult(g.reply(false))
		}
		next := g.state
		for _, ev := range events {
			next = g.kind.b.Apply(next, ev)
		}
		commit, err := g.commit(cmd, next, events, env, reqHash)
		if err != nil {
			return errorReply(err)
		}
		err = g.rt.committer.Commit(ctx, commit)
		switch {
		case err == nil:
			g.state, g.revision = next, commit.Snapshot.Revision
			g.wakeTimers(commit.Timers)
			if g.rt.committed != nil {
				g.rt.committed(g.key, events)
			}
			return &wirepb.GrainReply{Revision: g.revision, State: commit.Snapshot.State}
		case errors.Is(err, truth.ErrRevisionConflict):
			// Another activation committed first. Its snapshot is the truth:
			// reload and decide again.
			g.rt.log.Warn("revision conflict; reloading", "tenant_id", g.key.Tenant, "kind", g.key.Kind, "id", g.key.ID, "revision", g.revision)
			if err := g.load(ctx); err != nil {
				g.loaded = false
				return errorReply(grains.Errorf(grains.CodeUnavailable, "state could not be reloaded; retry later"))
			}
			if attempt+1 >= maxConflictRetries {
				return errorReply(grains.Errorf(grains.CodeConflict, "%s %s changed concurrently; retry", g.key.Kind, g.key.ID))
			}
		case errors.Is(err, truth.ErrIdempotencyConflict):
			return firstResult(errorReply(grains.Errorf(grains.CodeUnavailable,
				"idempotency record could not be read; retry later")))
		default:
			// The outcome of the write is unknown: forget the state so the
			// next command starts from the store.
			g.loaded = false
			g.rt.log.Error("commit failed", "tenant_id", g.key.Tenant, "kind", g.key.Kind, "id", g.key.ID, "error", err)
			return errorReply(grains.Errorf(grains.CodeUnavailable,
				"the commit could not be confirmed; retry with the same Idempotency-Key"))
		}
	}
}

// commit builds the atomic write of one decision.
func (g *grain[S]) commit(cmd *wirepb.GrainCommand, next S, events []grains.Event, env grains.Env, reqHash []byte) (truth.Commit, error) {
	state, err := json.Marshal(next)
	if err != nil {
		return truth.Commit{}, fmt.Errorf("actors: encode state: %w", err)
	}
	rev := g.revision + 1
	c := truth.Commit{
		ExpectedRevision: g.revision,
		Snapshot:         truth.Snapshot{Key: g.key, Revision: rev, State: state, UpdatedAt: env.Now},
	}
	causation := cmd.CausationId
	for i, ev := range events {
		payload, err := json.Marshal(ev)
		if err != nil {
			return truth.Commit{}, fmt.Errorf("actors: encode event %s: %w", ev.EventName(), err)
		}
		id := fmt.Sprintf("%s/%s/%s/%d/%d", g.key.Tenant, g.key.Kind, g.key.ID, rev, i)
		for j, topic := range g.kind.topics(ev.EventName()) {
			eid := id
			if j > 0 {
				eid = id + "#" + topic
			}
			c.Events = append(c.Events, truth.Event{
				EventID:       eid,
				Type:          ev.EventName(),
				Version:       1,
				Topic:         topic,
				Tenant:        g.key.Tenant,
				AggregateKind: g.key.Kind,
				AggregateID:   g.key.ID,
				Revision:      rev,
				OccurredAt:    env.Now,
				Producer:      g.kind.opts.producer,
				CorrelationID: cmd.CorrelationId,
				CausationID:   causation,
				Payload:       payload,
			})
		}
	}
	if cmd.IdempotencyKey != "" {
		// The first result is the new state at rev (Idempotency.Revision).
		c.Idempotency = &truth.Idempotency{
			Tenant:      g.key.Tenant,
			Key:         cmd.IdempotencyKey,
			Aggregate:   g.key,
			Command:     cmd.Name,
			RequestHash: reqHash,
			Revision:    rev,
			Response:    state,
			CreatedAt:   env.Now,
		}
	}
	var firedID string
	var firedAt time.Time
	if cmd.Actor == TimerActor {
		firedID, firedAt, _ = firedTimer(g.key, cmd.IdempotencyKey)
	}
	if c.Timers, err = timerChanges(events, firedID, firedAt); err != nil {
		return truth.Commit{}, err
	}
	c.Audit = []truth.Audit{{
		Tenant:        g.key.Tenant,
		Aggregate:     g.key,
		Revision:      rev,
		Actor:         cmd.Actor,
		Action:        cmd.Name,
		Reason:        reasonOf(cmd.Payload),
		CorrelationID: cmd.CorrelationId,
		At:            env.Now,
	}}
	return c, nil
}

// auditedRefusals are the refusals recorded in the audit chain: a lack of
// authority, and an operator's action the domain refused as unsafe (a
// manual recovery that could duplicate or lose an external effect, a cancel
// past the point of no return).
var auditedRefusals = map[grains.Code]bool{
	grains.CodeForbidden:             true,
	grains.CodeBillingOutcomeUnknown: true,
	grains.CodeReconcileFirst:        true,
	grains.CodePointOfNoReturn:       true,
}

// refusalDetail marks an audit-only record of a command refused with code;
// commandReason, when the command gave one, is its "reason".
func refusalDetail(code grains.Code, commandReason string) []byte {
	b, _ := json.Marshal(struct { // strings only: cannot fail
		Outcome       string `json:"outcome"`
		Code          string `json:"code"`
		CommandReason string `json:"commandReason,omitempty"`
	}{"refused", string(code), commandReason})
	return b
}

// auditRefusal records a refused command (see auditedRefusals) in the
// tenant's audit chain: who tried what on which aggregate, at its current
// revision, and the refusal (Reason is the refusal's message, Detail its
// code and the command's own reason). The grain's state does not change. A
// failure to record is logged; the caller is refused either way.
func (g *grain[S]) auditRefusal(ctx context.Context, cmd *wirepb.GrainCommand, code grains.Code, reason string, now time.Time) {
	if g.rt.audits == nil {
		return
	}
	_, err := g.rt.audits.AppendAudit(ctx, []truth.Audit{{
		Tenant:        g.key.Tenant,
		Aggregate:     g.key,
		Revision:      g.revision,
		Actor:         cmd.Actor,
		Action:        cmd.Name,
		Reason:        reason,
		CorrelationID: cmd.CorrelationId,
		At:            now,
		Detail:        refusalDetail(code, reasonOf(cmd.Payload)),
	}})
	if err != nil {
		g.rt.log.Error("audit refused command", "tenant_id", g.key.Tenant, "kind", g.key.Kind, "id", g.key.ID,
			"command", cmd.Name, "correlation_id", cmd.CorrelationId, "error", err)
	}
}

// wakeTimers tells the node's timer service about timers a commit set.
func (g *grain[S]) wakeTimers(changes []truth.TimerChange) {
	if g.rt.timers == nil {
		return
	}
	for _, tc := range changes {
		if !tc.Cancel {
			g.rt.timers.Wake(tc.At)
		}
	}
}

func (g *grain[S]) reply(replayed bool) *wirepb.GrainReply {
	state, err := json.Marshal(g.state)
	if err != nil {
		return errorReply(fmt.Errorf("actors: encode state: %w", err))
	}
	return &wirepb.GrainReply{Revision: g.revision, State: state, Replayed: replayed}
}

func replay(rec truth.Idempotency, key truth.Key, reqHash []byte) *wirepb.GrainReply {
	if rec.Aggregate != key || string(rec.RequestHash) != string(reqHash) {
		return errorReply(grains.Errorf(grains.CodeIdempotencyKeyReused,
			"the Idempotency-Key was already used for a different request"))
	}
	return &wirepb.GrainReply{Revision: rec.Revision, State: rec.Response, Replayed: true}
}

// requestHash identifies a request for idempotency: same key, same hash.
func requestHash(cmd *wirepb.GrainCommand) []byte {
	h := sha256.New()
	for _, part := range []string{cmd.Kind, cmd.Id, cmd.Name} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(cmd.Payload)
	return h.Sum(nil)
}

func reasonOf(payload []byte) string {
	if !strings.Contains(string(payload), `"reason"`) {
		return ""
	}
	var p struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(payload, &p) // a payload without a reason has none
	return p.Reason
}

func errorReply(err error) *wirepb.GrainReply {
	var e *grains.Error
	if !errors.As(err, &e) {
		e = grains.Errorf(grains.CodeInternal, "internal error")
	}
	r := &wirepb.GrainReply{ErrorCode: string(e.Code), ErrorMessage: e.Message}
	if len(e.Violations) > 0 {
		r.Violations, _ = json.Marshal(e.Violations)
	}
	return r
}

// replyError turns an error reply back into a *grains.Error.
func replyError(r *wirepb.GrainReply) error {
	if r.ErrorCode == "" {
		return nil
	}
	e := &grains.Error{Code: grains.Code(r.ErrorCode), Message: r.ErrorMessage}
	if len(r.Violations) > 0 {
		_ = json.Unmarshal(r.Violations, &e.Violations)
	}
	return e
}
