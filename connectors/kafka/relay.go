package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grainline/grainline/connectors/truth"
)

// Outbox is what the relay needs from the truth store. Both methods must be
// safe for concurrent use with the store's commits; PendingOutbox returns
// records in Seq order and keeps returning a record until it is acked.
type Outbox interface {
	PendingOutbox(ctx context.Context, limit int) ([]truth.OutboxRecord, error)
	AckOutbox(ctx context.Context, seqs []int64) error
}

var _ Outbox = truth.Store(nil)

// RelayConfig configures the outbox relay.
type RelayConfig struct {
	// Batch is the most records read, published and acked at once. Default 500.
	Batch int
	// PollInterval is how often the outbox is read when nobody calls Notify.
	// Default 200ms.
	PollInterval time.Duration
	// BackoffMin is the first wait after a failed read, publish or ack; it
	// doubles per consecutive failure, with ±50% jitter. Default 100ms.
	BackoffMin time.Duration
	// BackoffMax caps the wait. Default 10s.
	BackoffMax time.Duration
	// Lock, optional, makes one relay of many the publisher. Run calls it
	// every LockRetry until it returns ok, then publishes while it holds the
	// lock: before every publish round it calls held (bounded by
	// LockCheckTimeout), and when held fails the relay stops publishing,
	// calls release and goes back to waiting for the lock. Run also calls
	// release when it returns. A nil held means the lock cannot be lost.
	// Without Lock the relay always publishes (run one).
	//
	// held narrows, but cannot close, the window in which two relays publish:
	// the round in flight when the lock is lost still completes, so a record
	// may be published by both (consumers dedupe by event_id).
	Lock func(ctx context.Context) (release func(), held func(context.Context) error, ok bool, err error)
	// LockRetry is how often a standby relay tries Lock again, and the least
	// wait after a failed attempt. Default 2s.
	LockRetry time.Duration
	// LockCheckTimeout bounds each held call; a check that does not answer
	// in time counts as a lost lock. Default 2s.
	LockCheckTimeout time.Duration
}

func (c RelayConfig) withDefaults() RelayConfig {
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.LockRetry == 0 {
		c.LockRetry = 2 * time.Second
	}
	if c.LockCheckTimeout == 0 {
		c.LockCheckTimeout = 2 * time.Second
	}
	return c
}

// Validate checks c after defaults: a positive batch, no negative interval,
// and BackoffMin <= BackoffMax.
func (c RelayConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Batch < 1:
		return fmt.Errorf("%w: relay batch %d", ErrConfig, c.Batch)
	case c.PollInterval < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 || c.LockRetry < 0 || c.LockCheckTimeout < 0:
		return fmt.Errorf("%w: negative relay interval", ErrConfig)
	case c.BackoffMin > c.BackoffMax:
		return fmt.Errorf("%w: relay backoff min %s above max %s", ErrConfig, c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// RelayStats are the relay's counters since it was created.
type RelayStats struct {
	Published   uint64 // records published and acked
	Batches     uint64 // batches published and acked
	Failures    uint64 // failed reads, publishes, acks and lock calls
	LeaderLost  uint64 // times the relay found it had lost the lock
	Leader      bool   // publishing now: holds the lock, or runs without one
	LastError   string // the last failure, "" if none
	LastErrorAt time.Time
}

// Relay publishes committed outbox records to Kafka, at least once and in
// Seq order per aggregate: a record is acked only after Kafka acknowledged
// it (acks=all); a failed send is retried (the failed wave again, see Waves),
// so an event may be published twice and consumers dedupe by event_id. The
// first publication of an aggregate's events is always in Seq order.
type Relay struct {
	cfg      RelayConfig
	out      Outbox
	producer sarama.SyncProducer
	log      *slog.Logger
	wake     chan struct{}

	published atomic.Uint64
	batches   atomic.Uint64
	failures  atomic.Uint64
	lost      atomic.Uint64
	leader    atomic.Bool
	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

// NewRelay returns a relay reading out and writing with producer, which must
// be configured by Config.Sarama (idempotent, acks=all, goka's hasher).
func NewRelay(cfg RelayConfig, out Outbox, producer sarama.SyncProducer, log *slog.Logger) (*Relay, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if out == nil || producer == nil {
		return nil, fmt.Errorf("%w: relay needs an outbox and a producer", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{cfg: cfg, out: out, producer: producer, log: log, wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the relay to read the outbox now. It never blocks and is safe
// for concurrent use; the committer calls it after every durable commit.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RelayStats{
		Published:   r.published.Load(),
		Batches:     r.batches.Load(),
		Failures:    r.failures.Load(),
		LeaderLost:  r.lost.Load(),
		Leader:      r.leader.Load(),
		LastError:   r.lastErr,
		LastErrorAt: r.lastErrAt,
	}
}

// Register exposes the relay's counters as Prometheus metrics.
func (r *Relay) Register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "grainline_outbox_published_total",
			Help: "Outbox events published to Kafka and acknowledged in the truth store.",
		}, func() float64 { return float64(r.published.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "grainline_outbox_batches_total",
			Help: "Outbox batches published to Kafka.",
		}, func() float64 { return float64(r.batches.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "grainline_outbox_failures_total",
			Help: "Failed outbox reads, publishes and acknowledgements (each is retried).",
		}, func() float64 { return float64(r.failures.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "grainline_outbox_relay_leader_lost_total",
			Help: "Times the outbox relay found it had lost the relay lock and stopped publishing.",
		}, func() float64 { return float64(r.lost.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "grainline_outbox_relay_leader",
			Help: "1 while this outbox relay publishes (holds the relay lock), else 0.",
		}, func() float64 {
			if r.leader.Load() {
				return 1
			}
			return 0
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("kafka: register relay metrics: %w", err)
		}
	}
	return nil
}

// Run publishes until ctx is done, then returns nil. Failures are logged,
// counted and retried with backoff; they never end Run. With cfg.Lock, Run
// publishes only while it holds the lock (see RelayConfig.Lock).
func (r *Relay) Run(ctx context.Context) error {
	if r.cfg.Lock == nil {
		r.leader.Store(true)
		defer r.leader.Store(false)
		r.publish(ctx, nil)
		return nil
	}
	for {
		release, held, err := r.lead(ctx)
		if err != nil {
			return nil // ctx done while waiting
		}
		r.leader.Store(true)
		r.publish(ctx, held)
		r.leader.Store(false)
		release()
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("outbox relay lost the relay lock, standing by", "retry", r.cfg.LockRetry)
		r.wait(ctx, r.cfg.LockRetry)
	}
}

// publish reads, publishes and acks the outbox until ctx is done or, when
// held is not nil, until held fails before a publish round.
func (r *Relay) publish(ctx context.Context, held func(context.Context) error) {
	failures := 0
	var pending []truth.OutboxRecord // read but not yet acked
	var waves [][]*sarama.ProducerMessage
	sent := 0 // waves of pending Kafka acknowledged
	for {
		if ctx.Err() != nil {
			return
		}
		if pending == nil {
			recs, err := r.out.PendingOutbox(ctx, r.cfg.Batch)
			if err == nil && len(recs) > 0 {
				waves, err = Waves(recs)
			}
			if err != nil {
				failures++
				r.fail(ctx, "read outbox", err, failures)
				continue
			}
			if len(recs) == 0 {
				failures = 0
				r.idle(ctx)
				continue
			}
			pending, sent = recs, 0
		}
		if sent < len(waves) && held != nil {
			if err := r.checkHeld(ctx, held); err != nil {
				if ctx.Err() == nil {
					r.lost.Add(1)
					r.record("relay lock", err)
				}
				return
			}
		}
		var sendErr error
		for sent < len(waves) {
			if sendErr = r.send(waves[sent]); sendErr != nil {
				break
			}
			sent++
		}
		if sendErr != nil {
			failures++
			r.fail(ctx, "publish", sendErr, failures)
			continue
		}
		seqs := make([]int64, len(pending))
		for i, rec := range pending {
			seqs[i] = rec.Seq
		}
		if err := r.out.AckOutbox(ctx, seqs); err != nil {
			failures++
			r.fail(ctx, "ack outbox", err, failures)
			continue
		}
		r.published.Add(uint64(len(pending)))
		r.batches.Add(1)
		failures = 0
		full := len(pending) == r.cfg.Batch
		pending, waves = nil, nil
		if !full {
			r.idle(ctx)
		}
	}
}

// checkHeld calls held bounded by cfg.LockCheckTimeout.
func (r *Relay) checkHeld(ctx context.Context, held func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.LockCheckTimeout)
	defer cancel()
	return held(cctx)
}

// lead waits until cfg.Lock grants leadership or ctx is done. A standby tries
// again every cfg.LockRetry; after failed attempts it waits the failure
// backoff, but never less than LockRetry.
func (r *Relay) lead(ctx context.Context) (release func(), held func(context.Context) error, err error) {
	failures := 0
	for {
		release, held, ok, err := r.cfg.Lock(ctx)
		wait := r.cfg.LockRetry
		switch {
		case err != nil:
			failures++
			r.record("acquire relay lock", err)
			if d := backoff(r.cfg.BackoffMin, r.cfg.BackoffMax, failures); d > wait {
				wait = d
			}
			r.log.Warn("outbox relay lock failed, retrying", "err", err, "attempt", failures, "backoff", wait)
		case ok:
			r.log.Info("outbox relay is the leader")
			if release == nil {
				release = func() {}
			}
			return release, held, nil
		default:
			failures = 0
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		r.wait(ctx, wait)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
}

// Waves splits a batch (in Seq order) into the messages of successive
// SendMessages calls: wave i holds the i-th event of every aggregate in the
// batch, in Seq order. The relay sends wave i+1 only after Kafka acknowledged
// all of wave i. One call per batch would be faster, but when a call fails
// sarama may have given up on an aggregate's earlier event while still
// delivering its later one (their retry counts differ), and the retry of the
// batch would then first publish the events out of order. Usually a batch
// holds one or two events per aggregate, so it takes one or two calls.
func Waves(recs []truth.OutboxRecord) ([][]*sarama.ProducerMessage, error) {
	rank := make(map[truth.Key]int, len(recs))
	var waves [][]*sarama.ProducerMessage
	for _, rec := range recs {
		m, err := Message(rec.Event)
		if err != nil {
			return nil, fmt.Errorf("outbox seq %d: %w", rec.Seq, err)
		}
		k := truth.Key{Tenant: rec.Event.Tenant, Kind: rec.Event.AggregateKind, ID: rec.Event.AggregateID}
		i := rank[k]
		rank[k] = i + 1
		if i == len(waves) {
			waves = append(waves, nil)
		}
		waves[i] = append(waves[i], m)
	}
	return waves, nil
}

// send publishes one wave in one SendMessages call.
func (r *Relay) send(msgs []*sarama.ProducerMessage) error {
	err := r.producer.SendMessages(msgs)
	if err == nil {
		return nil
	}
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return fmt.Errorf("kafka: %d of %d messages failed, first on %s: %w", len(perrs), len(msgs), perrs[0].Msg.Topic, perrs[0].Err)
	}
	return fmt.Errorf("kafka: send batch: %w", err)
}

// Message builds the Kafka message of one outbox event: topic Event.Topic,
// key AggregateID, value the JSON Envelope, headers tenant_id, event_type and
// event_id, timestamp OccurredAt.
func Message(ev truth.Event) (*sarama.ProducerMessage, error) {
	if ev.Topic == "" || ev.AggregateID == "" {
		return nil, fmt.Errorf("kafka: event %s lacks topic or aggregate id", ev.EventID)
	}
	payload := json.RawMessage(ev.Payload)
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	value, err := json.Marshal(Envelope{
		EventID:       ev.EventID,
		EventType:     ev.Type,
		EventVersion:  ev.Version,
		OccurredAt:    ev.OccurredAt,
		TenantID:      ev.Tenant,
		Producer:      ev.Producer,
		CorrelationID: ev.CorrelationID,
		CausationID:   ev.CausationID,
		AggregateKind: ev.AggregateKind,
		AggregateID:   ev.AggregateID,
		Revision:      ev.Revision,
		Payload:       payload,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: encode event %s: %w", ev.EventID, err)
	}
	return &sarama.ProducerMessage{
		Topic: ev.Topic,
		Key:   sarama.StringEncoder(ev.AggregateID),
		Value: sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{
			{Key: []byte(HeaderTenant), Value: []byte(ev.Tenant)},
			{Key: []byte(HeaderEventType), Value: []byte(ev.Type)},
			{Key: []byte(HeaderEventID), Value: []byte(ev.EventID)},
		},
		Timestamp: ev.OccurredAt,
	}, nil
}

// fail records err and waits the backoff of the n-th consecutive failure.
func (r *Relay) fail(ctx context.Context, op string, err error, n int) {
	r.record(op, err)
	if ctx.Err() != nil {
		return
	}
	d := backoff(r.cfg.BackoffMin, r.cfg.BackoffMax, n)
	r.log.Warn("outbox relay failed, retrying", "op", op, "err", err, "attempt", n, "backoff", d)
	r.wait(ctx, d)
}

// record counts a failure and remembers it as the last error.
func (r *Relay) record(op string, err error) {
	r.failures.Add(1)
	r.mu.Lock()
	r.lastErr = op + ": " + err.Error()
	r.lastErrAt = time.Now()
	r.mu.Unlock()
}

// wait sleeps d or until ctx is done. Unlike idle it ignores Notify.
func (r *Relay) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// idle waits for Notify, the poll interval or ctx.
func (r *Relay) idle(ctx context.Context) {
	t := time.NewTimer(r.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-t.C:
	}
}

// backoff is min·2^(n-1), capped at max, with ±50% jitter (never above max).
func backoff(min, max time.Duration, n int) time.Duration {
	d := capped(min, n-1, max)
	j := time.Duration(float64(d) * (0.5 + rand.Float64()))
	if j > max {
		j = max
	}
	if j <= 0 {
		j = time.Millisecond
	}
	return j
}
