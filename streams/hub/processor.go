// Package hub is the event hub: tenants subscribe webhooks (TMF630-style
// hub: a callback URL and a query over event types), and the "oms-hub" goka
// processor reads the order event topic and POSTs each order event, as a
// TMF622 ProductOrder notification, to every subscription of the event's
// tenant whose query matches, signed with the subscription's secret (Sign).
//
// Deliveries are at least once: a receiver dedupes by the event id
// (X-Grainline-Event-Id, eventId in the body), which stays the same on every
// attempt and redelivery. Each subscriber has its own FIFO queue and
// goroutine, so a slow or failing subscriber delays nobody else; within one
// subscriber, events are delivered one at a time in the order they were read,
// which keeps the order of one order's events (they share a partition). A
// failed attempt (transport error, timeout, 429, 5xx) is retried with
// exponential backoff and jitter up to Config.Attempts; any other status is
// a rejection and is not retried. The input offset of an event is committed
// only when every matching subscriber has it delivered or given up, and
// offsets are committed in order per partition, so a restart redelivers
// whatever was not finished. Subscriptions and each subscriber's delivery
// state live in the truth store (Registry).
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/deadletter"
)

// Config configures the hub processor.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "oms-hub".
	Group goka.Group
	// OrderEvents is the input topic. Default "oms.order.events.v1".
	OrderEvents goka.Stream
	// DeadLetter receives undecodable events. Default "grainline.deadletter.v1".
	DeadLetter goka.Stream
	// Retry is the backoff between attempts. Default: 1s doubling to 5m,
	// jitter 0.5.
	Retry backoff.Policy
	// Attempts is the number of attempts per event and subscriber before it
	// is given up. Default 10.
	Attempts int
	// Timeout bounds one POST. Default 10s.
	Timeout time.Duration
	// MaxQueue is the number of events queued per subscriber; further events
	// for it are given up as dropped. Default 10000.
	MaxQueue int
	// AllowPrivate lets the default client deliver to loopback, private and
	// link-local addresses (development and tests on one machine). Off, the
	// default client refuses them after every name resolution
	// (ErrAddressNotAllowed), and an attempt refused so is given up, not
	// retried.
	AllowPrivate bool
	// Client sends the POSTs. Default: a client that follows no redirects
	// and, unless AllowPrivate, connects to public addresses only.
	Client *http.Client
	// Now is the clock of signatures and states. Default time.Now.
	Now func() time.Time
}

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("hub: invalid config")

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = "oms-hub"
	}
	if c.OrderEvents == "" {
		c.OrderEvents = "oms.order.events.v1"
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "grainline.deadletter.v1"
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = time.Second
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = 5 * time.Minute
	}
	c.Retry = c.Retry.WithDefaults()
	if c.Attempts == 0 {
		c.Attempts = 10
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 10000
	}
	if c.Client == nil {
		if c.AllowPrivate {
			c.Client = &http.Client{CheckRedirect: noRedirects}
		} else {
			c.Client = guardedClient()
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c after defaults: brokers are set, the input is not the
// dead-letter topic, the counts and timeout are positive and the retry
// policy valid.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return fmt.Errorf("%w: no brokers", ErrConfig)
	case c.OrderEvents == c.DeadLetter:
		return fmt.Errorf("%w: input topic %q is the dead-letter topic", ErrConfig, c.OrderEvents)
	case c.Attempts < 1 || c.MaxQueue < 1 || c.Timeout <= 0:
		return fmt.Errorf("%w: Attempts, MaxQueue and Timeout must be positive", ErrConfig)
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Processor is the hub's delivery processor.
type Processor struct {
	cfg   Config
	reg   *Registry
	log   *slog.Logger
	opts  []goka.ProcessorOption
	graph *goka.GroupGraph

	counts counts

	mu       sync.Mutex
	lanes    *lanes             // of the current Run
	trackers map[int32]*tracker // per input partition
}

// New builds the processor. opts configure goka: pass
// kafka.Config.GokaOptions().
func New(cfg Config, reg *Registry, log *slog.Logger, opts ...goka.ProcessorOption) (*Processor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, fmt.Errorf("%w: a registry is required", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Processor{cfg: cfg, reg: reg, opts: opts, log: log.With("group", string(cfg.Group))}
	p.graph = goka.DefineGroup(cfg.Group,
		goka.Input(cfg.OrderEvents, new(codec.Bytes), p.handle),
		goka.Output(cfg.DeadLetter, new(codec.Bytes)),
	)
	if err := p.graph.Validate(); err != nil {
		return nil, fmt.Errorf("hub: group graph: %w", err)
	}
	return p, nil
}

// Run delivers until ctx ends (nil) or the processor fails (its error).
// Deliveries in flight when it returns are abandoned uncommitted. Run may
// be called again after it returned.
func (p *Processor) Run(ctx context.Context) error {
	proc, err := goka.NewProcessor(p.cfg.Brokers, p.graph, p.opts...)
	if err != nil {
		return fmt.Errorf("hub: new processor: %w", err)
	}
	lctx, cancel := context.WithCancel(ctx)
	ls := newLanes(lctx, p)
	p.mu.Lock()
	p.lanes, p.trackers = ls, map[int32]*tracker{}
	p.mu.Unlock()
	defer func() { cancel(); ls.wait() }()
	p.log.Info("event hub running", "input", string(p.cfg.OrderEvents))
	err = proc.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

var errAbandoned = errors.New("hub: delivery abandoned before it finished")

func (p *Processor) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	// Every message takes its place in the partition's commit order, even
	// one that needs no delivery: its offset must not pass an earlier one's.
	tr := p.tracker(ctx)
	e := tr.add(ctx.DeferCommit())
	env, err := kafka.DecodeEnvelope(value)
	if err != nil {
		p.deadLetter(ctx, value, err)
		tr.finish(e, true)
		return
	}
	n, err := notify(env)
	if errors.Is(err, errNotPublished) {
		tr.finish(e, true)
		return
	}
	if err != nil {
		p.deadLetter(ctx, value, err)
		tr.finish(e, true)
		return
	}
	subs, err := p.reg.Subscriptions(ctx.Context(), env.TenantID)
	for err != nil {
		// The store is unreachable: block this partition (order matters)
		// and retry until it answers or the partition stops.
		p.log.Warn("reading subscriptions failed; retrying", "tenant_id", env.TenantID, "error", err)
		if !p.sleep(ctx.Context(), p.cfg.Retry.Initial) {
			tr.finish(e, false)
			return
		}
		subs, err = p.reg.Subscriptions(ctx.Context(), env.TenantID)
	}
	var matched []Subscription
	for _, s := range subs {
		// A subscription receives the events that occurred after it was made.
		if !env.OccurredAt.Before(s.CreatedAt) && s.filter().Match(n.eventType, n.state) {
			matched = append(matched, s)
		}
	}
	if len(matched) == 0 {
		tr.finish(e, true)
		return
	}
	tr.expect(e, len(matched))
	p.mu.Lock()
	ls := p.lanes
	p.mu.Unlock()
	for _, s := range matched {
		ls.enqueue(&job{tenant: env.TenantID, subID: s.ID, n: n, ctx: ctx.Context(),
			done: func(finished bool) { tr.finish(e, finished) }})
	}
	tr.finish(e, true) // the handler's own share
}

func (p *Processor) deadLetter(ctx goka.Context, value []byte, err error) {
	p.log.Warn("message dead-lettered", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
		"offset", ctx.Offset(), "error", err)
	deadletter.Emit(ctx, p.cfg.DeadLetter, value, deadletter.CategoryDecode, 1, err, p.cfg.Now())
}

// tracker returns the commit tracker of ctx's partition, a new one when the
// partition was (re)assigned since.
func (p *Processor) tracker(ctx goka.Context) *tracker {
	pctx := ctx.Context()
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.trackers[ctx.Partition()]
	if !ok || t.ctx != pctx {
		t = &tracker{ctx: pctx}
		// When the partition stops, everything pending is abandoned at once,
		// so that goka's shutdown does not wait for a subscriber.
		context.AfterFunc(pctx, t.abandon)
		p.trackers[ctx.Partition()] = t
	}
	return t
}

// tracker commits the messages of one partition in the order they were
// read: a message's offset is committed only when it and every message
// before it are finished. (Kafka commits one offset per partition: committing
// a later message would also commit an earlier one still in delivery.)
type tracker struct {
	ctx     context.Context
	mu      sync.Mutex
	pending []*entry
	broken  bool // abandoned: nothing commits any more
}

type entry struct {
	commit    func(error)
	remaining int // shares not finished: the handler's, plus one per delivery
	done      bool
}

func (t *tracker) add(commit func(error)) *entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &entry{commit: commit, remaining: 1}
	if t.broken {
		e.done = true
		commit(errAbandoned)
		return e
	}
	t.pending = append(t.pending, e)
	return e
}

// expect adds n delivery shares to e.
func (t *tracker) expect(e *entry, n int) {
	t.mu.Lock()
	e.remaining += n
	t.mu.Unlock()
}

// finish ends one share of e. finished false abandons the partition's
// pending messages: none of them is committed, so all are redelivered.
func (t *tracker) finish(e *entry, finished bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.done {
		return
	}
	if !finished {
		t.abandonLocked()
		return
	}
	e.remaining--
	for len(t.pending) > 0 && t.pending[0].remaining == 0 {
		head := t.pending[0]
		t.pending = t.pending[1:]
		head.done = true
		head.commit(nil)
	}
}

func (t *tracker) abandon() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.abandonLocked()
}

func (t *tracker) abandonLocked() {
	t.broken = true
	for _, e := range t.pending {
		e.done = true
		e.commit(errAbandoned)
	}
	t.pending = nil
}
