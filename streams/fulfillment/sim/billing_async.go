package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/grainline/grainline/streams/fulfillment"
)

// Callback statuses.
const (
	CallbackActive   = "active"
	CallbackRejected = "rejected"
)

// Callback is what an asynchronous billing system reports once it decided
// an activation it had accepted.
type Callback struct {
	Tenant  string
	OrderID string
	TaskID  string
	// Key is the activation's idempotency key (fulfillment.ExternalKey).
	Key string
	// Status is CallbackActive or CallbackRejected.
	Status string
	// Ref is the billing system's reference of the activation.
	Ref string
	// Reason says why a rejected activation was rejected.
	Reason string
}

// CallbackSink delivers one callback. It must be safe for concurrent use;
// an error counts the callback as undeliverable (it is not retried: the
// order's callback timer reconciles it).
type CallbackSink func(ctx context.Context, cb Callback) error

// AsyncConfig makes a billing simulator asynchronous: it accepts an
// activation at once (a pending receipt), decides it after Delay (rejected
// with the Config's RejectRate, else active) and reports the decision to
// Sink.
type AsyncConfig struct {
	// Delay is how long the system takes to decide an accepted activation.
	// Default 0 (decided right after the call returns).
	Delay time.Duration
	// DropRate is the probability in [0,1] that a callback is lost instead
	// of delivered. Default 0.
	DropRate float64
	// DropAll drops every callback (the lost-callback drill). Default
	// false.
	DropAll bool
	// Sink receives the callbacks; nil drops them all.
	Sink CallbackSink
	// SinkTimeout bounds one delivery. Default 10s.
	SinkTimeout time.Duration
	// Rand returns a float in [0,1) deciding drops; it must be safe for
	// concurrent use. Default math/rand/v2.Float64.
	Rand func() float64
}

// Validate checks c.
func (c AsyncConfig) Validate() error {
	if c.Delay < 0 || c.SinkTimeout < 0 {
		return fmt.Errorf("%w: negative delay or sink timeout", ErrConfig)
	}
	if c.DropRate < 0 || c.DropRate > 1 {
		return fmt.Errorf("%w: DropRate %v outside [0,1]", ErrConfig, c.DropRate)
	}
	return nil
}

// async is the asynchronous part of a billing simulator.
type async struct {
	cfg     AsyncConfig
	pending map[string]*pendingActivation // by key; guarded by system.mu
	done    chan struct{}
	closing sync.Once
	wg      sync.WaitGroup
}

type pendingActivation struct {
	req fulfillment.Request
	ref string
}

// NewAsyncBilling returns a simulated asynchronous billing system, or an
// error for an invalid config. Close stops its pending decisions.
func NewAsyncBilling(cfg Config, acfg AsyncConfig) (*Billing, error) {
	if err := acfg.Validate(); err != nil {
		return nil, err
	}
	if acfg.Rand == nil {
		acfg.Rand = rand.Float64
	}
	if acfg.SinkTimeout == 0 {
		acfg.SinkTimeout = 10 * time.Second
	}
	s, err := newSystem("billing", cfg)
	if err != nil {
		return nil, err
	}
	return &Billing{system: s, async: &async{cfg: acfg, pending: map[string]*pendingActivation{}, done: make(chan struct{})}}, nil
}

// Async reports whether b decides activations later, by callback.
func (b *Billing) Async() bool { return b.async != nil }

// Close stops an asynchronous billing system: activations not decided yet
// stay pending and no further callback is sent. It waits for deliveries in
// flight. Close is safe to call more than once; a synchronous system has
// nothing to stop.
func (b *Billing) Close() {
	if b.async == nil {
		return
	}
	b.async.closing.Do(func() { close(b.async.done) })
	b.async.wg.Wait()
}

// accept accepts an activation: it answers at once with a pending receipt
// and decides it later. A repeated call with the key returns the activation
// as it stands (pending, active or rejected) without a second effect.
func (b *Billing) accept(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if req.IdempotencyKey == "" {
		return fulfillment.Receipt{}, fmt.Errorf("%w: billing: request lacks an idempotency key", fulfillment.ErrRejected)
	}
	if err := b.wait(ctx); err != nil {
		return fulfillment.Receipt{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Calls++
	key := req.IdempotencyKey
	if e, ok := b.effects[key]; ok {
		return copyReceipt(e.Receipt), nil
	}
	if err, ok := b.rejected[key]; ok {
		return fulfillment.Receipt{}, err
	}
	if p, ok := b.async.pending[key]; ok {
		return pendingReceipt(key, p.ref), nil
	}
	select {
	case <-b.async.done:
		return fulfillment.Receipt{}, fmt.Errorf("%w: billing is shut down", fulfillment.ErrTechnical)
	default:
	}
	if b.cfg.Rand() < b.cfg.FailureRate {
		b.stats.Failures++
		return fulfillment.Receipt{}, fmt.Errorf("%w: billing unavailable", fulfillment.ErrTechnical)
	}
	b.stats.Accepted++
	p := &pendingActivation{req: req, ref: fmt.Sprintf("billing-%d", b.stats.Accepted)}
	b.async.pending[key] = p
	b.async.wg.Add(1)
	go b.decideLater(key)
	if b.cfg.LostReplyRate > 0 && b.cfg.Rand() < b.cfg.LostReplyRate {
		b.stats.LostReplies++
		return fulfillment.Receipt{}, ErrReplyLost
	}
	return pendingReceipt(key, p.ref), nil
}

func pendingReceipt(key, ref string) fulfillment.Receipt {
	return fulfillment.Receipt{Key: key, Ref: ref, Pending: true, Fields: map[string]string{"system": "billing-simulator"}}
}

// decideLater decides the activation under key after the delay and sends
// its callback.
func (b *Billing) decideLater(key string) {
	defer b.async.wg.Done()
	a := b.async
	if a.cfg.Delay > 0 {
		t := time.NewTimer(a.cfg.Delay)
		select {
		case <-a.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
	b.mu.Lock()
	p, ok := a.pending[key]
	if !ok {
		b.mu.Unlock()
		return
	}
	delete(a.pending, key)
	cb := Callback{Tenant: p.req.Tenant, OrderID: p.req.OrderID, TaskID: p.req.TaskID, Key: key, Ref: p.ref}
	if b.cfg.RejectRate > 0 && b.cfg.Rand() < b.cfg.RejectRate {
		cb.Status, cb.Reason = CallbackRejected, "billing refused task "+p.req.TaskID
		b.rejected[key] = fmt.Errorf("%w: %s", fulfillment.ErrRejected, cb.Reason)
		b.stats.Rejections++
	} else {
		cb.Status = CallbackActive
		rec := fulfillment.Receipt{Key: key, Ref: p.ref, Fields: map[string]string{"system": "billing-simulator"}}
		b.effects[key] = &Effect{Key: key, Request: p.req, Receipt: rec}
		b.order = append(b.order, key)
		b.stats.Effects++
	}
	drop := a.cfg.DropAll || a.cfg.Sink == nil || (a.cfg.DropRate > 0 && a.cfg.Rand() < a.cfg.DropRate)
	if drop {
		b.stats.CallbacksDropped++
	}
	b.mu.Unlock()
	if drop {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.SinkTimeout)
	defer cancel()
	go func() { // a shut-down system stops waiting for its sink
		select {
		case <-a.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := a.cfg.Sink(ctx, cb)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.stats.CallbackErrors++
		return
	}
	b.stats.CallbacksSent++
}

// queryAsync reports the activation under key, pending included.
func (b *Billing) queryAsync(ctx context.Context, key string) (fulfillment.Receipt, bool, error) {
	if err := b.wait(ctx); err != nil {
		return fulfillment.Receipt{}, false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Queries++
	if e, ok := b.effects[key]; ok {
		return copyReceipt(e.Receipt), true, nil
	}
	if err, ok := b.rejected[key]; ok {
		return fulfillment.Receipt{}, false, err
	}
	if p, ok := b.async.pending[key]; ok {
		return pendingReceipt(key, p.ref), true, nil
	}
	return fulfillment.Receipt{}, false, nil
}

// ErrCallbackRefused is returned by a sink whose receiver refused a
// callback.
var ErrCallbackRefused = errors.New("sim: callback refused")
