// Package intake turns accepted quotes into orders: the "oms-intake" goka
// processor reads the quote event topic and, for every QuoteAccepted event,
// emits one "create" command for the order to the order command topic, keyed
// by the order id. Other events are ignored; messages that cannot be decoded
// go to the dead-letter topic and processing continues.
//
// Duplicates are expected (the relay publishes at least once, a replay
// re-reads the topic): the command's idempotency key derives from the event
// id, so every delivery of one QuoteAccepted yields the same key, and the
// order grain dedupes it (its create is idempotent per quote id as well).
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/deadletter"
)

// EventQuoteAccepted is the event type intake reacts to.
const EventQuoteAccepted = "QuoteAccepted"

// Config configures the intake processor.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "oms-intake".
	Group goka.Group
	// QuoteEvents is the input topic. Default "cpq.quote.events.v1".
	QuoteEvents goka.Stream
	// OrderCommands is the output topic. Default "oms.order.commands.v1".
	OrderCommands goka.Stream
	// DeadLetter receives undecodable messages. Default "grainline.deadletter.v1".
	DeadLetter goka.Stream
	// Now is the clock for dead-letter records. Default time.Now.
	Now func() time.Time
}

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("intake: invalid config")

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = "oms-intake"
	}
	if c.QuoteEvents == "" {
		c.QuoteEvents = "cpq.quote.events.v1"
	}
	if c.OrderCommands == "" {
		c.OrderCommands = "oms.order.commands.v1"
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "grainline.deadletter.v1"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c: brokers are set and the topics are distinct.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if c.QuoteEvents == c.OrderCommands || c.QuoteEvents == c.DeadLetter {
		return fmt.Errorf("%w: input topic %q is also an output", ErrConfig, c.QuoteEvents)
	}
	return nil
}

// Processor is the intake processor.
type Processor struct {
	cfg   Config
	log   *slog.Logger
	opts  []goka.ProcessorOption
	graph *goka.GroupGraph
}

// New builds the processor. opts configure goka (sarama config, topic
// manager, hasher): pass kafka.Config.GokaOptions(); without them goka's
// global defaults apply, which do not suit production.
func New(cfg Config, log *slog.Logger, opts ...goka.ProcessorOption) (*Processor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Processor{cfg: cfg, log: log.With("group", string(cfg.Group)), opts: opts}
	p.graph = goka.DefineGroup(cfg.Group,
		goka.Input(cfg.QuoteEvents, new(codec.Bytes), p.handle),
		goka.Output(cfg.OrderCommands, new(codec.Bytes)),
		goka.Output(cfg.DeadLetter, new(codec.Bytes)),
	)
	if err := p.graph.Validate(); err != nil {
		return nil, fmt.Errorf("intake: group graph: %w", err)
	}
	return p, nil
}

// Run consumes until ctx ends (nil) or the processor fails (its error).
// Run may be called again after it returned.
func (p *Processor) Run(ctx context.Context) error {
	proc, err := goka.NewProcessor(p.cfg.Brokers, p.graph, p.opts...)
	if err != nil {
		return fmt.Errorf("intake: new processor: %w", err)
	}
	p.log.Info("intake running", "input", string(p.cfg.QuoteEvents), "output", string(p.cfg.OrderCommands))
	err = proc.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("intake: %w", err)
	}
	return nil
}

// acceptedPayload is the part of the QuoteAccepted payload intake needs.
type acceptedPayload struct {
	OrderID string `json:"orderId"`
	QuoteID string `json:"quoteId"`
}

// IdempotencyKey is the key of the create command for one QuoteAccepted
// event: stable across deliveries of that event.
func IdempotencyKey(eventID string) string { return "quote-accepted:" + eventID }

func (p *Processor) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	env, err := kafka.DecodeEnvelope(value)
	if err != nil {
		p.deadLetter(ctx, value, deadletter.CategoryDecode, err)
		return
	}
	if env.EventType != EventQuoteAccepted {
		return
	}
	var pl acceptedPayload
	if err := json.Unmarshal(env.Payload, &pl); err != nil {
		p.deadLetter(ctx, value, deadletter.CategoryDecode, fmt.Errorf("intake: decode QuoteAccepted payload: %w", err))
		return
	}
	if pl.OrderID == "" {
		p.deadLetter(ctx, value, deadletter.CategoryPermanent, errors.New("intake: QuoteAccepted payload lacks orderId"))
		return
	}
	cmd := kafka.CommandMessage{
		TenantID:       env.TenantID,
		Kind:           "order",
		ID:             pl.OrderID,
		Command:        "create",
		Payload:        env.Payload,
		IdempotencyKey: IdempotencyKey(env.EventID),
		Actor:          "intake",
		CorrelationID:  env.CorrelationID,
		CausationID:    env.EventID,
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		// The payload came from a valid JSON document; this is a bug.
		ctx.Fail(fmt.Errorf("intake: encode command: %w", err))
		return
	}
	ctx.Emit(p.cfg.OrderCommands, pl.OrderID, b, goka.WithCtxEmitHeaders(goka.Headers{
		kafka.HeaderTenant:  []byte(env.TenantID),
		kafka.HeaderEventID: []byte(env.EventID),
	}))
	p.log.Debug("order create emitted", "tenant_id", env.TenantID, "order_id", pl.OrderID,
		"quote_id", pl.QuoteID, "correlation_id", env.CorrelationID, "event_id", env.EventID)
}

func (p *Processor) deadLetter(ctx goka.Context, value []byte, cat deadletter.Category, err error) {
	p.log.Warn("message dead-lettered", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
		"offset", ctx.Offset(), "category", string(cat), "error", err)
	deadletter.Emit(ctx, p.cfg.DeadLetter, value, cat, 1, err, p.cfg.Now())
}
