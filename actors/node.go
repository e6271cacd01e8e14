// Package actors is the engine: it hosts quote and order grains in a
// Proto.Actor cluster, runs each command through the pure domain in grains/,
// and makes every decision durable through the node's group committer before
// the grain replies.
package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/proto/wirepb"
)

// Config configures a node.
type Config struct {
	// ClusterName must be the same on every member. Default "grainline".
	ClusterName string
	// Host is the address the node's remote endpoint listens on. Default
	// "127.0.0.1".
	Host string
	// Port of the remote endpoint; 0 picks a free port. Default 0.
	Port int
	// Provider is the cluster membership provider. Default: a single
	// in-process member (see LocalMembership).
	Provider cluster.ClusterProvider
	// IdleTimeout passivates a grain that received no command for this long.
	// Default 10m.
	IdleTimeout time.Duration
	// RequestTimeout bounds one grain call when the caller's context has no
	// earlier deadline. Default 10s.
	RequestTimeout time.Duration
	// Committer configures the node's group commit.
	Committer CommitterConfig
	// Timers configures the node's durable timer service.
	Timers TimerConfig
}

func (c *Config) setDefaults() {
	if c.ClusterName == "" {
		c.ClusterName = "grainline"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Provider == nil {
		c.Provider = LocalMembership()
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	c.Committer.setDefaults()
	c.Timers.setDefaults()
}

// Validate reports an invalid configuration.
func (c Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("actors: Port %d out of range", c.Port)
	}
	if c.IdleTimeout < time.Second {
		return fmt.Errorf("actors: IdleTimeout %v is below 1s", c.IdleTimeout)
	}
	if c.RequestTimeout <= 0 {
		return errors.New("actors: RequestTimeout must be positive")
	}
	if err := c.Timers.Validate(); err != nil {
		return err
	}
	return c.Committer.Validate()
}

// Store is what a node needs of the truth store.
type Store interface {
	Loader
	BatchWriter
}

// Deps are a node's collaborators.
type Deps struct {
	// Store is the truth store. When it implements truth.AuditAppender,
	// a command a grain refuses with grains.CodeForbidden is recorded in
	// the tenant's audit chain.
	Store    Store
	Catalogs CatalogSource // needed by kinds made WithCatalog
	Policies PolicySource  // needed by kinds made WithPolicy
	Kinds    []Kind
	Now      func() time.Time // default time.Now
	Log      *slog.Logger
	// Timers is where the node's timer service finds due timers. Default:
	// Store, when it implements truth.TimerStore; with neither (or with
	// Config.Timers.Disabled) the node fires no timers.
	Timers truth.TimerStore
	// Committed, when set, is told of the events of every commit this node
	// made durable, once per commit (never for a replayed or refused
	// command), on the grain's goroutine: it must be safe for concurrent
	// use and must not block. Business metrics count events here.
	Committed func(key truth.Key, events []grains.Event)
}

// Membership is an in-process membership registry: every node started with a
// provider from the same Membership joins the same cluster. It serves
// `grainline dev` (one member) and multi-member tests.
type Membership struct{ agent *test.InMemAgent }

// NewMembership returns an empty in-process membership registry.
func NewMembership() *Membership { return &Membership{agent: test.NewInMemAgent()} }

// Provider returns a cluster provider that joins this registry.
func (m *Membership) Provider() cluster.ClusterProvider {
	return test.NewTestProvider(m.agent,
		test.WithTestProviderRefreshTtl(200*time.Millisecond),
		test.WithTestProviderServiceTtl(2*time.Second))
}

// LocalMembership returns the provider of a single in-process member.
func LocalMembership() cluster.ClusterProvider { return NewMembership().Provider() }

// Node is one cluster member hosting grains. It implements call.Sender and
// call.Reader.
type Node struct {
	caller
	committer *Committer

	stopCommitter context.CancelFunc
	committerDone chan error

	timers         *Timers // nil when the node fires no timers
	stopTimers     func()  // stops and waits for the timer service; nil if none
	stopTimersOnce sync.Once
}

// caller sends grain calls into the cluster: the part a Node and a Client
// share.
type caller struct {
	cfg     Config
	log     *slog.Logger
	system  *actor.ActorSystem
	cluster *cluster.Cluster

	mu       sync.RWMutex
	closing  bool
	inflight sync.WaitGroup
}

var (
	_ call.Sender = (*Node)(nil)
	_ call.Reader = (*Node)(nil)
	_ call.Sender = (*Client)(nil)
	_ call.Reader = (*Client)(nil)
)

// StartNode starts a cluster member hosting deps.Kinds and its committer.
func StartNode(cfg Config, deps Deps) (n *Node, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || len(deps.Kinds) == 0 {
		return nil, errors.New("actors: a node needs a store and at least one kind")
	}
	for _, k := range deps.Kinds {
		if o := k.options(); (o.needsCatalog && deps.Catalogs == nil) || (len(o.policyCommands) > 0 && deps.Policies == nil) {
			return nil, fmt.Errorf("actors: kind %s needs Deps.Catalogs or Deps.Policies, which are not set", k.Name())
		}
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	committer, err := NewCommitter(cfg.Committer, deps.Store, deps.Log)
	if err != nil {
		return nil, err
	}
	rt := &runtime{store: deps.Store, committer: committer, catalogs: deps.Catalogs, policies: deps.Policies, now: deps.Now, log: deps.Log,
		committed: deps.Committed}
	rt.audits, _ = deps.Store.(truth.AuditAppender)

	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return deps.Log.With("subsystem", "protoactor")
	}))
	kinds := make([]*cluster.Kind, 0, len(deps.Kinds))
	for _, k := range deps.Kinds {
		k := k
		props := actor.PropsFromProducer(func() actor.Actor {
			return &grainActor{kind: k, rt: rt, idle: cfg.IdleTimeout, timeout: cfg.RequestTimeout}
		})
		kinds = append(kinds, cluster.NewKind(string(k.Name()), props))
	}
	remoteCfg := remote.Configure(cfg.Host, cfg.Port)
	clusterCfg := cluster.Configure(cfg.ClusterName, cfg.Provider, disthash.New(), remoteCfg,
		cluster.WithKinds(kinds...), cluster.WithRequestTimeout(cfg.RequestTimeout))
	c := cluster.New(system, clusterCfg)

	ctx, cancel := context.WithCancel(context.Background())
	n = &Node{
		caller:    caller{cfg: cfg, log: deps.Log, system: system, cluster: c},
		committer: committer, stopCommitter: cancel, committerDone: make(chan error, 1),
	}
	if deps.Timers == nil {
		deps.Timers, _ = deps.Store.(truth.TimerStore)
	}
	if deps.Timers != nil && !cfg.Timers.Disabled {
		// Made before the member starts, so every grain sees it.
		if n.timers, err = NewTimers(cfg.Timers, deps.Timers, n, deps.Now, deps.Log.With("subsystem", "timers")); err != nil {
			cancel()
			return nil, err
		}
		rt.timers = n.timers
	}
	go func() { n.committerDone <- committer.Run(ctx) }()

	defer func() {
		// Proto.Actor panics when its endpoint cannot listen.
		if r := recover(); r != nil {
			cancel()
			<-n.committerDone
			n, err = nil, fmt.Errorf("actors: start cluster member: %v", r)
		}
	}()
	c.StartMember()

	if n.timers != nil {
		tctx, tcancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.timers.Run(tctx) }()
		n.stopTimers = func() { tcancel(); <-done }
	}
	return n, nil
}

// Timers returns the node's timer service, or nil when it fires none.
func (n *Node) Timers() *Timers { return n.timers }

// Address returns the remote address (host:port).
func (n *caller) Address() string { return n.system.Address() }

// CommitStats returns the committer's batches and durable commits so far.
func (n *Node) CommitStats() (batches, commits uint64) { return n.committer.Stats() }

// Committer returns the node's committer.
func (n *Node) Committer() *Committer { return n.committer }

// Send delivers cmd to its grain and waits for the durable result.
func (n *caller) Send(ctx context.Context, cmd call.Command) (call.Result, error) {
	if cmd.Name == "" {
		return call.Result{}, grains.Errorf(grains.CodeBadRequest, "command name missing")
	}
	return n.request(ctx, cmd.Tenant, cmd.Kind, cmd.ID, &wirepb.GrainCommand{
		Tenant:         string(cmd.Tenant),
		Kind:           string(cmd.Kind),
		Id:             cmd.ID,
		Name:           cmd.Name,
		Payload:        cmd.Payload,
		IdempotencyKey: cmd.IdempotencyKey,
		IfMatch:        cmd.IfMatch,
		Actor:          cmd.Actor,
		Roles:          cmd.Roles,
		CorrelationId:  cmd.CorrelationID,
		CausationId:    cmd.CausationID,
	})
}

// Get returns the current state of one grain.
func (n *caller) Get(ctx context.Context, tenant grains.TenantID, kind grains.Kind, id string) (call.Result, error) {
	return n.request(ctx, tenant, kind, id, &wirepb.GrainCommand{
		Tenant: string(tenant), Kind: string(kind), Id: id, ReadOnly: true,
	})
}

// Identity is the cluster identity of a grain: "<tenant>/<id>".
func Identity(tenant grains.TenantID, id string) string { return string(tenant) + "/" + id }

func validKey(tenant grains.TenantID, id string) bool {
	return tenant != "" && id != "" && !strings.Contains(string(tenant), "/") && len(id) <= 200
}

// request calls a grain. It retries only where the command cannot have been
// delivered (no owner known yet, or the activation was gone); a call that
// timed out may have been applied, so it is reported as unavailable and
// never resent here: callers retry with the same idempotency key.
func (n *caller) request(ctx context.Context, tenant grains.TenantID, kind grains.Kind, id string, msg *wirepb.GrainCommand) (call.Result, error) {
	if !validKey(tenant, id) {
		return call.Result{}, grains.Errorf(grains.CodeNotFound, "%s %q not found", kind, id)
	}
	n.mu.RLock()
	if n.closing {
		n.mu.RUnlock()
		return call.Result{}, grains.Errorf(grains.CodeUnavailable, "node is shutting down")
	}
	n.inflight.Add(1)
	n.mu.RUnlock()
	defer n.inflight.Done()

	deadline := time.Now().Add(n.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	identity := Identity(tenant, id)
	backoff := 5 * time.Millisecond
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return call.Result{}, grains.Errorf(grains.CodeUnavailable, "no grain owner for %s %s within the deadline", kind, id)
		}
		pid := n.cluster.Get(identity, string(kind))
		if pid != nil {
			res, err := n.system.Root.RequestFuture(pid, msg, remaining).Result()
			switch {
			case err == nil:
				reply, ok := res.(*wirepb.GrainReply)
				if !ok {
					return call.Result{}, fmt.Errorf("actors: unexpected reply %T", res)
				}
				if err := replyError(reply); err != nil {
					return call.Result{}, err
				}
				return call.Result{Revision: reply.Revision, State: reply.State, Replayed: reply.Replayed}, nil
			case errors.Is(err, actor.ErrDeadLetter) || errors.Is(err, remote.ErrDeadLetter):
				// The activation had stopped: the command was not delivered.
				n.cluster.PidCache.Remove(identity, string(kind))
			case errors.Is(err, actor.ErrTimeout) || errors.Is(err, remote.ErrTimeout):
				return call.Result{}, grains.Errorf(grains.CodeUnavailable,
					"%s %s did not answer in time; the command may have been applied: retry with the same Idempotency-Key", kind, id)
			default:
				return call.Result{}, grains.Errorf(grains.CodeUnavailable, "grain call failed: %v", err)
			}
		}
		select {
		case <-ctx.Done():
			return call.Result{}, grains.Errorf(grains.CodeUnavailable, "grain call cancelled: %v", ctx.Err())
		case <-time.After(min(backoff, time.Until(deadline))):
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// Stop shuts the node down in two phases: it refuses new calls and waits
// (until ctx ends) for calls in flight, then leaves the cluster and drains the
// committer, so that every accepted command is durable before the grains go.
func (n *Node) Stop(ctx context.Context) error {
	if n.stopTimers != nil {
		// No timer fires into a node that is going: a timer whose command
		// is cut short stays in the store for the next node.
		n.stopTimersOnce.Do(n.stopTimers)
	}
	if !n.refuseCalls() {
		return nil
	}
	err := n.drain(ctx)
	n.cluster.Shutdown(true)
	n.stopCommitter()
	if cerr := <-n.committerDone; cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// refuseCalls makes new calls fail with CodeUnavailable; false if it
// already did.
func (n *caller) refuseCalls() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return false
	}
	n.closing = true
	return true
}

// drain waits until ctx ends for the calls in flight.
func (n *caller) drain(ctx context.Context) error {
	drained := make(chan struct{})
	go func() { n.inflight.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actors: stop: calls still in flight: %w", ctx.Err())
	}
}

// Client calls grains hosted by the cluster's members without hosting any
// itself: the gateway and stream processors of a separate process use one.
type Client struct{ caller }

// StartClient joins the cluster as a client. Config.Committer is unused.
func StartClient(cfg Config, log *slog.Logger) (cl *Client, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("subsystem", "protoactor")
	}))
	c := cluster.New(system, cluster.Configure(cfg.ClusterName, cfg.Provider, disthash.New(),
		remote.Configure(cfg.Host, cfg.Port), cluster.WithRequestTimeout(cfg.RequestTimeout)))
	defer func() {
		if r := recover(); r != nil {
			cl, err = nil, fmt.Errorf("actors: start cluster client: %v", r)
		}
	}()
	c.StartClient()
	return &Client{caller{cfg: cfg, log: log, system: system, cluster: c}}, nil
}

// Stop refuses new calls, waits (until ctx ends) for calls in flight and
// leaves the cluster.
func (c *Client) Stop(ctx context.Context) error {
	if !c.refuseCalls() {
		return nil
	}
	err := c.drain(ctx)
	c.cluster.Shutdown(true)
	return err
}

// grainActor is the actor behind every activation. It handles one command
// at a time: the mailbox serialises them, and a command's reply waits for its
// commit.
type grainActor struct {
	kind    Kind
	rt      *runtime
	idle    time.Duration
	timeout time.Duration
	key     truth.Key
	act     activation
}

func (a *grainActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.SetReceiveTimeout(a.idle)
	case *cluster.ClusterInit:
		tenant, id, ok := strings.Cut(m.Identity.Identity, "/")
		if !ok {
			a.rt.log.Error("grain identity without tenant", "identity", m.Identity.Identity)
			return
		}
		a.key = truth.Key{Tenant: tenant, Kind: string(a.kind.Name()), ID: id}
		a.act = a.kind.handler(a.key, a.rt)
	case *wirepb.GrainCommand:
		if a.act == nil || m.Tenant != a.key.Tenant || m.Id != a.key.ID {
			ctx.Respond(errorReply(grains.Errorf(grains.CodeInternal, "command routed to the wrong grain")))
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), a.timeout)
		reply := a.act.handle(cctx, m)
		cancel()
		ctx.Respond(reply)
		if !a.act.exists() {
			// Nothing to keep: reads of unknown ids must not pile up
			// activations. A message queued behind the stop is answered as
			// a dead letter, and the caller resends it to a new activation.
			ctx.Poison(ctx.Self())
		}
	case *actor.ReceiveTimeout:
		// Passivate: the state is durable, the next command reactivates.
		ctx.Poison(ctx.Self())
	}
}

// AutomanagedMembership returns a provider for multi-process clusters
// without a membership service: every process serves its health on
// adminPort and polls the peers' ("host:adminPort", every member's,
// including its own).
func AutomanagedMembership(adminPort int, peers []string) cluster.ClusterProvider {
	return automanaged.NewWithConfig(time.Second, adminPort, peers...)
}
