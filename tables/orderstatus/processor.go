package orderstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lovoo/goka"
	gokacodec "github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/deadletter"
)

// Config configures the table processor.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Group is the consumer group; its table topic is Group+"-table".
	// Default "oms-order-status".
	Group goka.Group
	// OrderEvents is the input topic. Default "oms.order.events.v1".
	OrderEvents goka.Stream
	// DeadLetter receives undecodable events and events that would
	// overwrite another tenant's row. Default "grainline.deadletter.v1".
	DeadLetter goka.Stream
	// StorageDir, when set, keeps the local table in LevelDB below it, so a
	// restart recovers only what it missed. Default "": in memory, rebuilt
	// from the table topic on every start. A goka.WithStorageBuilder option
	// overrides both.
	StorageDir string
	// Now is the clock for dead-letter records. Default time.Now.
	Now func() time.Time
}

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("orderstatus: invalid config")

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = "oms-order-status"
	}
	if c.OrderEvents == "" {
		c.OrderEvents = "oms.order.events.v1"
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "grainline.deadletter.v1"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks c: brokers are set and the input is not the dead-letter
// topic.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if c.OrderEvents == c.DeadLetter {
		return fmt.Errorf("%w: input topic %q is the dead-letter topic", ErrConfig, c.OrderEvents)
	}
	return nil
}

// Table returns the table topic of a group.
func Table(group goka.Group) goka.Table { return goka.GroupTable(group) }

// Processor folds order events into the status table.
type Processor struct {
	cfg   Config
	log   *slog.Logger
	opts  []goka.ProcessorOption
	graph *goka.GroupGraph
}

// New builds the processor. opts configure goka: pass
// kafka.Config.GokaOptions(). The table topic must exist (compacted, with
// the input's partition count).
func New(cfg Config, log *slog.Logger, opts ...goka.ProcessorOption) (*Processor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	store := storage.MemoryBuilder()
	if cfg.StorageDir != "" {
		store = storage.DefaultBuilder(cfg.StorageDir)
	}
	p := &Processor{
		cfg:  cfg,
		log:  log.With("group", string(cfg.Group)),
		opts: append([]goka.ProcessorOption{goka.WithStorageBuilder(store)}, opts...),
	}
	p.graph = goka.DefineGroup(cfg.Group,
		goka.Input(cfg.OrderEvents, new(gokacodec.Bytes), p.handle),
		goka.Persist(codec{}),
		goka.Output(cfg.DeadLetter, new(gokacodec.Bytes)),
	)
	if err := p.graph.Validate(); err != nil {
		return nil, fmt.Errorf("orderstatus: group graph: %w", err)
	}
	return p, nil
}

// Run folds events until ctx ends (nil) or the processor fails (its error).
// Run may be called again after it returned.
func (p *Processor) Run(ctx context.Context) error {
	proc, err := goka.NewProcessor(p.cfg.Brokers, p.graph, p.opts...)
	if err != nil {
		return fmt.Errorf("orderstatus: new processor: %w", err)
	}
	p.log.Info("order status table running", "input", string(p.cfg.OrderEvents), "table", string(Table(p.cfg.Group)))
	err = proc.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("orderstatus: %w", err)
	}
	return nil
}

// eventPayload is what every order event payload carries.
type eventPayload struct {
	OrderID string `json:"orderId"`
	QuoteID string `json:"quoteId"`
	Status  string `json:"status"`
}

func (p *Processor) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	env, err := kafka.DecodeEnvelope(value)
	if err != nil {
		p.deadLetter(ctx, value, deadletter.CategoryDecode, err)
		return
	}
	var pl eventPayload
	if err := json.Unmarshal(env.Payload, &pl); err != nil {
		p.deadLetter(ctx, value, deadletter.CategoryDecode, fmt.Errorf("orderstatus: decode payload: %w", err))
		return
	}
	cur, exists := ctx.Value().(Status)
	if exists && cur.TenantID != env.TenantID {
		p.deadLetter(ctx, value, deadletter.CategoryPermanent,
			fmt.Errorf("orderstatus: order %s belongs to another tenant", ctx.Key()))
		return
	}
	if exists && !cur.newer(env.Revision, env.EventID) {
		p.log.Debug("older or duplicate event ignored", "tenant_id", env.TenantID, "order_id", ctx.Key(),
			"revision", env.Revision, "event_id", env.EventID, "table_revision", cur.Revision)
		return
	}
	next := cur
	next.TenantID = env.TenantID
	next.OrderID = ctx.Key()
	if pl.QuoteID != "" {
		next.QuoteID = pl.QuoteID
	}
	if pl.Status != "" {
		next.Status = pl.Status
	}
	next.Revision = env.Revision
	next.UpdatedAt = env.OccurredAt.UTC()
	next.EventID = env.EventID
	ctx.SetValue(next)
}

func (p *Processor) deadLetter(ctx goka.Context, value []byte, cat deadletter.Category, err error) {
	p.log.Warn("message dead-lettered", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
		"offset", ctx.Offset(), "category", string(cat), "error", err)
	deadletter.Emit(ctx, p.cfg.DeadLetter, value, cat, 1, err, p.cfg.Now())
}
