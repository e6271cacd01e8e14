// Package router feeds grain commands from a command topic into grains: the
// "oms-order-router" goka processor decodes every CommandMessage and sends it
// through a Sender (the cluster client in production).
//
// Errors are classified. A *grains.Error whose code is neither unavailable
// nor conflict is permanent (a domain outcome such as invalid_transition or
// not_found, and internal, a bug in the grain that resending cannot fix): the
// message is dead-lettered and the router moves on. A command for a grain
// kind outside Config.Kinds is dead-lettered at once, unsent: the cluster
// would answer unavailable for it forever. Anything else (unavailable,
// conflict, errors without a code) is transient: the router retries with
// exponential backoff and jitter until the send succeeds or the processor
// stops, blocking its partition meanwhile so that commands for one key stay
// in order; an outage never dead-letters work. A message whose retry was cut
// short by shutdown is not committed and is delivered again after restart;
// the grain's idempotency record makes that harmless.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/deadletter"
)

// Sender delivers one command to its grain (actors/call.Sender has this
// method set). Send must be safe for concurrent use: goka calls it from one
// goroutine per partition.
type Sender interface {
	Send(ctx context.Context, cmd call.Command) (call.Result, error)
}

// SystemRole is the role the router's commands carry.
const SystemRole = "system"

// Config configures the router.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "oms-order-router".
	Group goka.Group
	// Commands is the input topic. Default "oms.order.commands.v1".
	Commands goka.Stream
	// DeadLetter receives undecodable and permanently failing commands.
	// Default "grainline.deadletter.v1".
	DeadLetter goka.Stream
	// Retry is the backoff between attempts of a transient failure.
	// Defaults: see backoff.Policy.
	Retry backoff.Policy
	// SendTimeout bounds one Send. Default 30s.
	SendTimeout time.Duration
	// Now is the clock for dead-letter records. Default time.Now.
	Now func() time.Time
	// Kinds are the grain kinds commands may address; a command for any
	// other kind is dead-lettered (category permanent) without being sent.
	// Default "quote", "order".
	Kinds []grains.Kind
}

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("router: invalid config")

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = "oms-order-router"
	}
	if c.Commands == "" {
		c.Commands = "oms.order.commands.v1"
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "grainline.deadletter.v1"
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Kinds) == 0 {
		c.Kinds = []grains.Kind{grains.KindQuote, grains.KindOrder}
	}
	c.Retry = c.Retry.WithDefaults()
	return c
}

// Validate checks c: brokers are set, the topics differ, the retry policy is
// valid, the send timeout positive and no kind is empty.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if c.Commands == c.DeadLetter {
		return fmt.Errorf("%w: input topic %q is the dead-letter topic", ErrConfig, c.Commands)
	}
	if c.SendTimeout <= 0 {
		return fmt.Errorf("%w: SendTimeout must be positive", ErrConfig)
	}
	for _, k := range c.Kinds {
		if k == "" {
			return fmt.Errorf("%w: empty grain kind in Kinds", ErrConfig)
		}
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Processor is the command router.
type Processor struct {
	cfg    Config
	log    *slog.Logger
	sender Sender
	opts   []goka.ProcessorOption
	graph  *goka.GroupGraph
}

// New builds the router. opts configure goka: pass kafka.Config.GokaOptions().
func New(cfg Config, sender Sender, log *slog.Logger, opts ...goka.ProcessorOption) (*Processor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sender == nil {
		return nil, fmt.Errorf("%w: nil sender", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Processor{cfg: cfg, sender: sender, opts: opts, log: log.With("group", string(cfg.Group))}
	p.graph = goka.DefineGroup(cfg.Group,
		goka.Input(cfg.Commands, new(codec.Bytes), p.handle),
		goka.Output(cfg.DeadLetter, new(codec.Bytes)),
	)
	if err := p.graph.Validate(); err != nil {
		return nil, fmt.Errorf("router: group graph: %w", err)
	}
	return p, nil
}

// Run routes until ctx ends (nil) or the processor fails (its error). Run
// may be called again after it returned.
func (p *Processor) Run(ctx context.Context) error {
	proc, err := goka.NewProcessor(p.cfg.Brokers, p.graph, p.opts...)
	if err != nil {
		return fmt.Errorf("router: new processor: %w", err)
	}
	p.log.Info("router running", "input", string(p.cfg.Commands))
	err = proc.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// Permanent reports whether err is an answer that resending cannot change:
// a *grains.Error with any code but unavailable and conflict (a domain
// outcome, or internal: a bug). Unavailable, conflict and errors without a
// code (transport failures) are transient.
func Permanent(err error) bool {
	var ge *grains.Error
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.Code {
	case grains.CodeUnavailable, grains.CodeConflict:
		return false
	}
	return true
}

// ErrUnknownKind: the command addresses a grain kind outside Config.Kinds.
var ErrUnknownKind = errors.New("router: unknown grain kind")

// errStopped marks a message whose handling was cut short by shutdown; it
// fails the message's commit so that it is delivered again.
var errStopped = errors.New("router: stopped before the command was delivered")

func (p *Processor) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	m, err := kafka.DecodeCommand(value)
	if err != nil {
		p.deadLetter(ctx, value, deadletter.CategoryDecode, 1, err)
		return
	}
	cmd := call.Command{
		Tenant:         grains.TenantID(m.TenantID),
		Kind:           grains.Kind(m.Kind),
		ID:             m.ID,
		Name:           m.Command,
		Payload:        m.Payload,
		IdempotencyKey: m.IdempotencyKey,
		Actor:          m.Actor,
		Roles:          []string{SystemRole},
		CorrelationID:  m.CorrelationID,
		CausationID:    m.CausationID,
	}
	log := p.log.With("tenant_id", m.TenantID, "kind", m.Kind, "id", m.ID, "command", m.Command,
		"correlation_id", m.CorrelationID, "partition", ctx.Partition(), "offset", ctx.Offset())

	if !slices.Contains(p.cfg.Kinds, cmd.Kind) {
		err := fmt.Errorf("%w %q (routable: %v)", ErrUnknownKind, m.Kind, p.cfg.Kinds)
		log.Warn("command for an unknown grain kind, dead-lettered", "error", err)
		p.deadLetter(ctx, value, deadletter.CategoryPermanent, 0, err)
		return
	}

	// The commit waits for done: a retry cut short by shutdown must leave
	// the offset uncommitted.
	done := ctx.DeferCommit()
	pctx := ctx.Context()
	attempts, err := backoff.Retry(pctx, p.cfg.Retry,
		func(err error) bool { return !Permanent(err) },
		func(attempt int, err error, wait time.Duration) {
			log.Warn("command failed, retrying", "attempt", attempt, "wait", wait, "error", err)
		},
		func(ctx context.Context) error {
			sctx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
			defer cancel()
			_, err := p.sender.Send(sctx, cmd)
			return err
		})
	switch {
	case err == nil:
		log.Debug("command delivered", "attempts", attempts)
		done(nil)
	case Permanent(err):
		log.Warn("command rejected, dead-lettered", "attempts", attempts, "code", string(grains.CodeOf(err)), "error", err)
		p.deadLetter(ctx, value, deadletter.CategoryPermanent, attempts, err)
		done(nil)
	default:
		log.Info("command not delivered before shutdown", "attempts", attempts, "error", err)
		done(fmt.Errorf("%w: %w", errStopped, err))
	}
}

func (p *Processor) deadLetter(ctx goka.Context, value []byte, cat deadletter.Category, attempts int, err error) {
	if cat == deadletter.CategoryDecode {
		p.log.Warn("message dead-lettered", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
			"offset", ctx.Offset(), "category", string(cat), "error", err)
	}
	deadletter.Emit(ctx, p.cfg.DeadLetter, value, cat, attempts, err, p.cfg.Now())
}
