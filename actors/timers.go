package actors

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
)

// TimerActor is the actor name of commands fired by durable timers; they
// carry the role TimerRole.
const (
	TimerActor = "timer"
	TimerRole  = "system"
)

// timerKeyPrefix starts the idempotency key of every fired timer command.
const timerKeyPrefix = "timer:"

// TimerKey is the idempotency key of the command a timer fires:
// "timer:<tenant>/<kind>/<id>/<timerID>/<at in unix nanoseconds>/<digest>",
// each name part path-escaped (so a '/' inside one cannot shift the others)
// and digest the first 8 bytes, in hex, of a SHA-256 of the command name and
// payload. A timer replaced with a new At, or set again at the same At with
// another command or payload after an earlier firing committed, gets a new
// key; a timer fired twice gets the same.
func TimerKey(d truth.DueTimer) string {
	return fmt.Sprintf("%s%s/%s/%s/%s/%d/%s", timerKeyPrefix, url.PathEscape(d.Key.Tenant), url.PathEscape(d.Key.Kind),
		url.PathEscape(d.Key.ID), url.PathEscape(d.TimerID), truth.TimerTime(d.At).UnixNano(), timerDigest(d.Command, d.Payload))
}

// timerDigest is the digest part of TimerKey.
func timerDigest(command string, payload []byte) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(command)))])
	h.Write([]byte(command))
	h.Write(payload)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// firedTimer returns the timer id and time an idempotency key of TimerKey's
// form names, when it names a timer of key. It also reads keys written before
// the digest part was added (five parts, no digest).
func firedTimer(key truth.Key, idempotencyKey string) (timerID string, at time.Time, ok bool) {
	rest, ok := strings.CutPrefix(idempotencyKey, timerKeyPrefix)
	if !ok {
		return "", time.Time{}, false
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 5:
	case len(parts) == 6 && validDigest(parts[5]):
	default:
		return "", time.Time{}, false
	}
	var un [4]string
	for i := range un {
		if un[i], ok = unescape(parts[i]); !ok {
			return "", time.Time{}, false
		}
	}
	if (truth.Key{Tenant: un[0], Kind: un[1], ID: un[2]}) != key || un[3] == "" {
		return "", time.Time{}, false
	}
	nanos, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return un[3], time.Unix(0, nanos).UTC(), true
}

func validDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 8
}

func unescape(s string) (string, bool) {
	u, err := url.PathUnescape(s)
	return u, err == nil
}

// timerChanges turns the timer effects of a decision's events into the
// commit's timer changes, one per timer id (the last event's change wins).
// fired, when the command was fired by a timer, is cancelled too unless an
// event set or cancelled it itself: the timer is gone once its command has
// committed.
func timerChanges(events []grains.Event, firedID string, firedAt time.Time) ([]truth.TimerChange, error) {
	var (
		out   []truth.TimerChange
		index = map[string]int{}
	)
	put := func(tc truth.TimerChange) {
		if i, ok := index[tc.TimerID]; ok {
			out[i] = tc
			return
		}
		index[tc.TimerID] = len(out)
		out = append(out, tc)
	}
	for _, ev := range events {
		te, ok := ev.(grains.TimerEffects)
		if !ok {
			continue
		}
		set, cancel := te.Timers()
		for _, id := range cancel {
			put(truth.TimerChange{TimerID: id, Cancel: true})
		}
		for _, t := range set {
			if t.ID == "" || t.Command == "" || t.At.IsZero() {
				return nil, fmt.Errorf("actors: event %s sets timer %q without an id, a command or a time", ev.EventName(), t.ID)
			}
			put(truth.TimerChange{TimerID: t.ID, At: truth.TimerTime(t.At), Command: t.Command, Payload: t.Payload})
		}
	}
	if firedID != "" {
		if _, ok := index[firedID]; !ok {
			put(truth.TimerChange{TimerID: firedID, Cancel: true, IfAt: firedAt})
		}
	}
	return out, nil
}

// TimerConfig configures the timer service.
type TimerConfig struct {
	// PollInterval is how often the store is asked for due timers. A commit
	// that sets a timer due before the next poll wakes the service at once.
	// Default 1s.
	PollInterval time.Duration
	// Batch is the most timers read per poll. Default 100.
	Batch int
	// MinBackoff is the first wait before a timer whose command failed
	// transiently is tried again; it doubles per failure. Default 1s.
	MinBackoff time.Duration
	// MaxBackoff caps that wait. Default 1m.
	MaxBackoff time.Duration
	// Disabled turns the node's timer service off (timers are still written;
	// another process may fire them). Default false.
	Disabled bool
}

func (c *TimerConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.Batch == 0 {
		c.Batch = 100
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Minute
	}
}

// Validate reports an invalid configuration.
func (c TimerConfig) Validate() error {
	switch {
	case c.PollInterval <= 0:
		return errors.New("timers: PollInterval must be positive")
	case c.Batch < 1:
		return fmt.Errorf("timers: Batch must be >= 1, got %d", c.Batch)
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("timers: need 0 < MinBackoff (%v) <= MaxBackoff (%v)", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// Timers fires durable timers: it polls the store for due timers and sends
// each timer's command, in due order, through a call.Sender (a node's own
// Send, so cluster placement applies). A command that succeeded or failed
// with a domain error ends the timer (the command's commit cancels it, and
// so does CancelTimer); a transient failure leaves it for a later poll, after
// a backoff. Firing is at least once: the command's idempotency key
// (TimerKey) makes a repeat harmless.
type Timers struct {
	cfg    TimerConfig
	store  truth.TimerStore
	sender call.Sender
	now    func() time.Time
	log    *slog.Logger
	wakeC  chan struct{}

	mu      sync.Mutex
	retries map[string]retry // by TimerKey
}

type retry struct {
	failures int
	notUntil time.Time // on the wall clock
}

// NewTimers returns a timer service; call Run to start it. now is the clock
// timers are due by (default time.Now).
func NewTimers(cfg TimerConfig, store truth.TimerStore, sender call.Sender, now func() time.Time, log *slog.Logger) (*Timers, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || sender == nil {
		return nil, errors.New("timers: a store and a sender are required")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Timers{cfg: cfg, store: store, sender: sender, now: now, log: log,
		wakeC: make(chan struct{}, 1), retries: map[string]retry{}}, nil
}

// Wake makes Run poll now rather than at its next interval, if at is before
// that. It never blocks.
func (s *Timers) Wake(at time.Time) {
	if at.After(s.now().Add(s.cfg.PollInterval)) {
		return
	}
	select {
	case s.wakeC <- struct{}{}:
	default:
	}
}

// Run polls and fires timers until ctx ends. A failing poll is logged and
// retried at the next interval.
func (s *Timers) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		if err := s.FireDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("timer poll failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wakeC:
		}
	}
}

// FireDue fires, in due order, the timers due now, and returns once each has
// been tried; it reads until a page is short or brings no timer it has not
// seen yet. It returns the error of the store's read.
//
// A timer backing off after a transient failure, or already tried by this
// call, is skipped, and each further page asks for Batch more timers than
// were skipped so far: timers that keep failing at the front of the due
// order cannot hold back those behind them, whether or not the store leases
// what it returns (the embedded store does not). The cost is re-reading the
// skipped timers on each page of a poll.
func (s *Timers) FireDue(ctx context.Context) error {
	s.forgetOldRetries()
	skip := map[string]bool{} // by TimerKey: backing off or tried in this call
	for {
		limit := s.cfg.Batch + len(skip)
		due, err := s.store.DueTimers(ctx, s.now(), limit)
		if err != nil {
			return fmt.Errorf("timers: due timers: %w", err)
		}
		seen := len(skip)
		for _, d := range due {
			if ctx.Err() != nil {
				return nil
			}
			key := TimerKey(d)
			if skip[key] {
				continue
			}
			skip[key] = true
			if s.backingOff(key) {
				continue
			}
			s.fire(ctx, d)
		}
		// A full page may hide more due timers; stop when this page was short
		// or held only timers already skipped.
		if len(due) < limit || len(skip) == seen {
			return nil
		}
	}
}

// backingOff reports whether the timer with the given TimerKey failed
// transiently and its backoff has not yet passed.
func (s *Timers) backingOff(key string) bool {
	s.mu.Lock()
	r, ok := s.retries[key]
	s.mu.Unlock()
	return ok && time.Now().Before(r.notUntil)
}

// fire sends one timer's command and reports whether the timer ended.
func (s *Timers) fire(ctx context.Context, d truth.DueTimer) bool {
	key := TimerKey(d)
	if s.backingOff(key) {
		return false
	}
	s.mu.Lock()
	r := s.retries[key]
	s.mu.Unlock()
	log := s.log.With("tenant_id", d.Key.Tenant, "kind", d.Key.Kind, "id", d.Key.ID, "timer_id", d.TimerID, "due_at", d.At)
	_, err := s.sender.Send(ctx, call.Command{
		Tenant:         grains.TenantID(d.Key.Tenant),
		Kind:           grains.Kind(d.Key.Kind),
		ID:             d.Key.ID,
		Name:           d.Command,
		Payload:        d.Payload,
		IdempotencyKey: key,
		Actor:          TimerActor,
		Roles:          []string{TimerRole},
		CorrelationID:  key,
		CausationID:    key,
	})
	if err != nil && transient(err) {
		r.failures++
		wait := min(s.cfg.MinBackoff<<min(r.failures-1, 20), s.cfg.MaxBackoff)
		r.notUntil = time.Now().Add(wait)
		s.mu.Lock()
		s.retries[key] = r
		s.mu.Unlock()
		log.Warn("timer command failed; retrying later", "failures", r.failures, "retry_in", wait, "error", err)
		return false
	}
	if err != nil {
		log.Warn("timer command rejected; timer dropped", "command", d.Command, "error", err)
	}
	// The command's own commit cancelled the timer when it committed; this
	// covers a command that committed nothing or was rejected.
	if cerr := s.store.CancelTimer(ctx, d.Key, d.TimerID, d.At); cerr != nil {
		log.Warn("cancel fired timer", "error", cerr)
	}
	s.mu.Lock()
	delete(s.retries, key)
	s.mu.Unlock()
	return true
}

// transient reports whether a failed command may succeed if sent again:
// errors without a domain code, and the codes for an unavailable
// dependency, a lost race and an internal fault.
func transient(err error) bool {
	var e *grains.Error
	if !errors.As(err, &e) {
		return true
	}
	switch e.Code {
	case grains.CodeUnavailable, grains.CodeConflict, grains.CodeInternal:
		return true
	}
	return false
}

// forgetOldRetries drops the backoff of timers not tried for a long time
// (cancelled or fired elsewhere meanwhile).
func (s *Timers) forgetOldRetries() {
	cutoff := time.Now().Add(-2 * s.cfg.MaxBackoff)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.retries {
		if r.notUntil.Before(cutoff) {
			delete(s.retries, k)
		}
	}
}
