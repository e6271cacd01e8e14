// Package sim simulates the external systems of fulfillment (inventory,
// provisioning, billing, notification) for tests, demos and drills. Each
// simulator is configurable for latency, technical failure rate, business
// rejection rate and "succeeded but the reply was lost", with an injectable
// random source, and keeps its side effects so a test can count them.
//
// Every simulator dedupes by the request's idempotency key: the first call
// that gets through decides the outcome under that key, and later calls with
// the key return it without a second side effect, as a well-behaved external
// system does. A technical failure decides nothing (the call may be
// repeated). Side effects live in memory only.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grainline/grainline/streams/fulfillment"
)

// ErrReplyLost is returned by a call whose side effect happened but whose
// reply was lost; it wraps context.DeadlineExceeded, as a client's timeout
// would.
var ErrReplyLost = fmt.Errorf("sim: reply lost after the effect: %w", context.DeadlineExceeded)

// Config configures a simulator.
type Config struct {
	// Latency is how long one call (and one query) takes. Default 0.
	Latency time.Duration
	// FailureRate is the probability in [0,1] that a call fails
	// technically, without effect (fulfillment.ErrTechnical). Default 0.
	FailureRate float64
	// RejectRate is the probability in [0,1] that a call is rejected for a
	// business reason (fulfillment.ErrRejected). Default 0.
	RejectRate float64
	// LostReplyRate is the probability in [0,1] that a call which took
	// effect returns ErrReplyLost instead of its receipt. Default 0.
	LostReplyRate float64
	// Rand returns a float in [0,1); it must be safe for concurrent use.
	// Default math/rand/v2.Float64. One draw decides failure, rejection or
	// effect (failure if below FailureRate, rejection if below
	// FailureRate+RejectRate); a second draw, after an effect, decides a
	// lost reply.
	Rand func() float64
}

// ErrConfig reports an invalid simulator configuration.
var ErrConfig = errors.New("sim: invalid config")

// Validate checks c: latency is not negative and the rates are
// probabilities whose failure and rejection sum to at most 1.
func (c Config) Validate() error {
	if c.Latency < 0 {
		return fmt.Errorf("%w: latency %v is negative", ErrConfig, c.Latency)
	}
	for name, r := range map[string]float64{"FailureRate": c.FailureRate, "RejectRate": c.RejectRate, "LostReplyRate": c.LostReplyRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%w: %s %v outside [0,1]", ErrConfig, name, r)
		}
	}
	if c.FailureRate+c.RejectRate > 1 {
		return fmt.Errorf("%w: FailureRate+RejectRate exceeds 1", ErrConfig)
	}
	return nil
}

// Effect is one side effect a simulator recorded.
type Effect struct {
	Key     string
	Request fulfillment.Request
	Receipt fulfillment.Receipt
	// Undone is set once a compensation (release, deprovision) ran.
	Undone bool
	// UndoSeq orders the first undo of each effect across every simulator
	// of the process (1, 2, …), so a test can check compensation order.
	UndoSeq uint64
}

// undoSeq numbers undos across simulators.
var undoSeq atomic.Uint64

// Stats counts what a simulator saw.
type Stats struct {
	// Calls are the effecting calls that got past the latency.
	Calls int
	// Queries are the queries that got past the latency.
	Queries int
	// Effects are the side effects recorded (one per key at most).
	Effects int
	// Rejections are the keys rejected.
	Rejections int
	// Failures are the technical failures returned.
	Failures int
	// LostReplies are the effects whose reply was lost.
	LostReplies int
	// Accepted, asynchronous billing only: the activations accepted for a
	// later decision (one per key at most). Effects counts those that
	// became active.
	Accepted int
	// CallbacksSent, CallbacksDropped, CallbackErrors, asynchronous billing
	// only: callbacks delivered to the sink, dropped on purpose, and
	// refused by the sink (or undeliverable).
	CallbacksSent    int
	CallbacksDropped int
	CallbackErrors   int
}

// system is the shared core of every simulator.
type system struct {
	name string
	cfg  Config

	mu       sync.Mutex
	effects  map[string]*Effect
	rejected map[string]error
	order    []string // keys in effect order
	stats    Stats
}

func newSystem(name string, cfg Config) (*system, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	return &system{name: name, cfg: cfg, effects: map[string]*Effect{}, rejected: map[string]error{}}, nil
}

func (s *system) wait(ctx context.Context) error {
	if s.cfg.Latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(s.cfg.Latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call performs the effecting call of req.
func (s *system) call(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if req.IdempotencyKey == "" {
		return fulfillment.Receipt{}, fmt.Errorf("%w: %s: request lacks an idempotency key", fulfillment.ErrRejected, s.name)
	}
	if err := s.wait(ctx); err != nil {
		return fulfillment.Receipt{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Calls++
	key := req.IdempotencyKey
	if e, ok := s.effects[key]; ok {
		return copyReceipt(e.Receipt), nil
	}
	if err, ok := s.rejected[key]; ok {
		return fulfillment.Receipt{}, err
	}
	r := s.cfg.Rand()
	switch {
	case r < s.cfg.FailureRate:
		s.stats.Failures++
		return fulfillment.Receipt{}, fmt.Errorf("%w: %s unavailable", fulfillment.ErrTechnical, s.name)
	case r < s.cfg.FailureRate+s.cfg.RejectRate:
		err := fmt.Errorf("%w: %s refused task %s", fulfillment.ErrRejected, s.name, req.TaskID)
		s.rejected[key] = err
		s.stats.Rejections++
		return fulfillment.Receipt{}, err
	}
	rec := fulfillment.Receipt{Key: key, Ref: fmt.Sprintf("%s-%d", s.name, len(s.order)+1),
		Fields: map[string]string{"system": s.name + "-simulator"}}
	s.effects[key] = &Effect{Key: key, Request: req, Receipt: rec}
	s.order = append(s.order, key)
	s.stats.Effects++
	if s.cfg.LostReplyRate > 0 && s.cfg.Rand() < s.cfg.LostReplyRate {
		s.stats.LostReplies++
		return fulfillment.Receipt{}, ErrReplyLost
	}
	return copyReceipt(rec), nil
}

func (s *system) query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	if err := s.wait(ctx); err != nil {
		return fulfillment.Receipt{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Queries++
	if e, ok := s.effects[key]; ok {
		return copyReceipt(e.Receipt), true, nil
	}
	if err, ok := s.rejected[key]; ok {
		return fulfillment.Receipt{}, false, err
	}
	return fulfillment.Receipt{}, false, nil
}

// undo marks the effect under key undone; undoing twice is a no-op, undoing
// nothing is a rejection.
func (s *system) undo(ctx context.Context, key string) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.effects[key]
	if !ok {
		return fmt.Errorf("%w: %s has nothing under %q", fulfillment.ErrRejected, s.name, key)
	}
	if !e.Undone {
		e.Undone, e.UndoSeq = true, undoSeq.Add(1)
	}
	return nil
}

// Effects returns the recorded side effects in the order they happened.
func (s *system) Effects() []Effect {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Effect, len(s.order))
	for i, k := range s.order {
		out[i] = *s.effects[k]
		out[i].Receipt = copyReceipt(out[i].Receipt)
	}
	return out
}

// Stats returns the counters.
func (s *system) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func copyReceipt(r fulfillment.Receipt) fulfillment.Receipt {
	if r.Fields != nil {
		f := make(map[string]string, len(r.Fields))
		for k, v := range r.Fields {
			f[k] = v
		}
		r.Fields = f
	}
	return r
}

// Inventory is a simulated inventory system; a reservation is its effect.
type Inventory struct{ *system }

// NewInventory returns a simulated inventory, or an error for an invalid
// config.
func NewInventory(cfg Config) (*Inventory, error) {
	s, err := newSystem("inventory", cfg)
	if err != nil {
		return nil, err
	}
	return &Inventory{s}, nil
}

// Reserve reserves stock under req's idempotency key.
func (i *Inventory) Reserve(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	return i.call(ctx, req)
}

// Query reports the reservation under key. A rejected key reports the
// rejection as its error.
func (i *Inventory) Query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	return i.query(ctx, key)
}

// Release releases the reservation under key.
func (i *Inventory) Release(ctx context.Context, key string) error { return i.undo(ctx, key) }

// Provisioning is a simulated provisioning system.
type Provisioning struct{ *system }

// NewProvisioning returns a simulated provisioning system, or an error for
// an invalid config.
func NewProvisioning(cfg Config) (*Provisioning, error) {
	s, err := newSystem("provisioning", cfg)
	if err != nil {
		return nil, err
	}
	return &Provisioning{s}, nil
}

// Provision provisions the service under req's idempotency key.
func (p *Provisioning) Provision(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	return p.call(ctx, req)
}

// Query reports the provisioning under key.
func (p *Provisioning) Query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	return p.query(ctx, key)
}

// Deprovision undoes the provisioning under key.
func (p *Provisioning) Deprovision(ctx context.Context, key string) error { return p.undo(ctx, key) }

// Billing is a simulated billing system: synchronous (NewBilling), or
// asynchronous with callbacks (NewAsyncBilling, billing_async.go).
type Billing struct {
	*system
	async *async // nil: synchronous
}

// NewBilling returns a simulated synchronous billing system, or an error
// for an invalid config.
func NewBilling(cfg Config) (*Billing, error) {
	s, err := newSystem("billing", cfg)
	if err != nil {
		return nil, err
	}
	return &Billing{system: s}, nil
}

// Activate activates billing under req's idempotency key; an asynchronous
// billing system accepts it and answers with a pending receipt.
func (b *Billing) Activate(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if b.async != nil {
		return b.accept(ctx, req)
	}
	return b.call(ctx, req)
}

// Query reports the activation under key: absent, pending (asynchronous
// only), active, or rejected (its error).
func (b *Billing) Query(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	if b.async != nil {
		return b.queryAsync(ctx, key)
	}
	return b.query(ctx, key)
}

// Notification is a simulated notification system; a sent message is its
// effect.
type Notification struct{ *system }

// NewNotification returns a simulated notification system, or an error for
// an invalid config.
func NewNotification(cfg Config) (*Notification, error) {
	s, err := newSystem("notification", cfg)
	if err != nil {
		return nil, err
	}
	return &Notification{s}, nil
}

// Notify sends the notification under req's idempotency key.
func (n *Notification) Notify(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	return n.call(ctx, req)
}

// Compile-time checks.
var (
	_ fulfillment.Inventory    = (*Inventory)(nil)
	_ fulfillment.Provisioning = (*Provisioning)(nil)
	_ fulfillment.Billing      = (*Billing)(nil)
	_ fulfillment.Notification = (*Notification)(nil)
)
