package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// job is one event to deliver to one subscriber.
type job struct {
	tenant string
	subID  string
	n      notification
	// ctx is the context of the partition the event came from: when it
	// ends (shutdown, rebalance) the job is abandoned, uncommitted.
	ctx context.Context
	// done is called once: finished true when the job was delivered or
	// given up, false when it was abandoned.
	done func(finished bool)
}

// outcome of one attempt.
type outcome int

const (
	delivered outcome = iota
	retry
	rejected
)

// lanes delivers jobs through one FIFO queue and goroutine per subscriber,
// so a slow or failing subscriber delays only itself.
type lanes struct {
	p      *Processor
	ctx    context.Context
	mu     sync.Mutex
	queues map[string]*lane
	wg     sync.WaitGroup
}

type lane struct {
	mu    sync.Mutex
	queue []*job
	wake  chan struct{}
}

func newLanes(ctx context.Context, p *Processor) *lanes {
	return &lanes{p: p, ctx: ctx, queues: map[string]*lane{}}
}

// enqueue queues j on its subscriber's lane, or gives it up as dropped when
// the lane holds Config.MaxQueue jobs already.
func (ls *lanes) enqueue(j *job) {
	key := j.tenant + "/" + j.subID
	ls.mu.Lock()
	l, ok := ls.queues[key]
	if !ok {
		l = &lane{wake: make(chan struct{}, 1)}
		ls.queues[key] = l
		ls.wg.Add(1)
		go ls.run(l)
	}
	ls.mu.Unlock()

	l.mu.Lock()
	if len(l.queue) >= ls.p.cfg.MaxQueue {
		l.mu.Unlock()
		ls.p.log.Warn("subscriber queue full: event dropped", "tenant_id", j.tenant, "subscription_id", j.subID, "event_id", j.n.eventID)
		ls.p.record(j, func(s *DeliveryState) {
			s.Dropped++
			s.Status = StatusFailing
			s.LastGivenUpEventID = j.n.eventID
			s.LastError = "queue full: event dropped"
			at := ls.p.cfg.Now().UTC()
			s.LastErrorAt = &at
		})
		ls.p.counts.dropped.Add(1)
		j.done(true)
		return
	}
	ls.p.counts.queued.Add(1)
	l.queue = append(l.queue, j)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// wait returns once every lane goroutine ended (after ctx ended).
func (ls *lanes) wait() { ls.wg.Wait() }

func (ls *lanes) run(l *lane) {
	defer ls.wg.Done()
	for {
		l.mu.Lock()
		var j *job
		if len(l.queue) > 0 {
			j = l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
		}
		l.mu.Unlock()
		if j == nil {
			select {
			case <-ls.ctx.Done():
				return
			case <-l.wake:
			}
			continue
		}
		if ls.ctx.Err() != nil {
			j.done(false) // stopping: abandon the rest of the queue
		} else {
			// The delivery ends with its partition or with Run, whichever
			// comes first, so a hanging subscriber never delays a shutdown.
			ctx, cancel := context.WithCancel(j.ctx)
			stop := context.AfterFunc(ls.ctx, cancel)
			dj := *j
			dj.ctx = ctx
			ls.p.deliver(&dj)
			stop()
			cancel()
		}
		ls.p.counts.queued.Add(-1)
	}
}

// deliver tries one job until it is delivered, rejected or out of attempts,
// or its context ends.
func (p *Processor) deliver(j *job) {
	log := p.log.With("tenant_id", j.tenant, "subscription_id", j.subID, "event_id", j.n.eventID, "order_id", j.n.orderID)
	for attempt := 1; ; attempt++ {
		if j.ctx.Err() != nil {
			j.done(false)
			return
		}
		sub, ok, err := p.reg.Lookup(j.ctx, j.tenant, j.subID)
		if err != nil {
			// The store is unreachable: wait as after a failed attempt, without
			// spending one.
			log.Warn("subscription lookup failed", "error", err)
			if !p.sleep(j.ctx, p.cfg.Retry.Wait(attempt)) {
				j.done(false)
				return
			}
			attempt--
			continue
		}
		if !ok {
			log.Debug("subscription deleted: delivery dropped")
			j.done(true)
			return
		}
		out, code, retryAfter, err := p.post(j.ctx, sub, j.n, attempt)
		if j.ctx.Err() != nil {
			j.done(false)
			return
		}
		now := p.cfg.Now().UTC()
		switch {
		case out == delivered:
			p.record(j, func(s *DeliveryState) {
				s.Status = StatusOK
				s.LastEventID, s.EventID, s.Attempts = j.n.eventID, j.n.eventID, attempt
				s.LastDeliveredAt = &now
				s.Delivered++
			})
			p.counts.delivered.Add(1)
			log.Debug("event delivered", "attempt", attempt, "status_code", code)
			j.done(true)
			return
		case out == rejected:
			p.record(j, failed(j.n.eventID, attempt, code, err, now, func(s *DeliveryState) {
				s.Rejected++
				s.Status = StatusFailing
				s.LastGivenUpEventID = j.n.eventID
			}))
			p.counts.rejected.Add(1)
			log.Warn("event rejected by subscriber: given up", "attempt", attempt, "status_code", code, "error", err)
			j.done(true)
			return
		case attempt >= p.cfg.Attempts:
			p.record(j, failed(j.n.eventID, attempt, code, err, now, func(s *DeliveryState) {
				s.Exhausted++
				s.Status = StatusFailing
				s.LastGivenUpEventID = j.n.eventID
			}))
			p.counts.exhausted.Add(1)
			log.Warn("event delivery out of attempts: given up", "attempt", attempt, "status_code", code, "error", err)
			j.done(true)
			return
		}
		wait := max(p.cfg.Retry.Wait(attempt), min(retryAfter, p.cfg.Retry.Max))
		p.record(j, failed(j.n.eventID, attempt, code, err, now, func(s *DeliveryState) {
			s.Retried++
			s.Status = StatusRetrying
		}))
		p.counts.retried.Add(1)
		log.Info("event delivery failed: retrying", "attempt", attempt, "status_code", code, "wait", wait, "error", err)
		if !p.sleep(j.ctx, wait) {
			j.done(false)
			return
		}
	}
}

// failed returns the state change of a failed attempt plus more.
func failed(eventID string, attempt, code int, err error, at time.Time, more func(*DeliveryState)) func(*DeliveryState) {
	return func(s *DeliveryState) {
		s.EventID, s.Attempts = eventID, attempt
		s.LastStatusCode = code
		if err != nil {
			s.LastError = err.Error()
		}
		s.LastErrorAt = &at
		more(s)
	}
}

// record writes a change of the job's delivery state; a failure to write is
// logged (the delivery itself is unaffected).
func (p *Processor) record(j *job, f func(*DeliveryState)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), 10*time.Second)
	defer cancel()
	if err := p.reg.record(ctx, j.tenant, j.subID, f); err != nil {
		p.log.Warn("delivery state not stored", "tenant_id", j.tenant, "subscription_id", j.subID, "error", err)
	}
}

func (p *Processor) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// post makes one delivery attempt. 2xx is delivered; 429, 5xx and transport
// errors are retried (retryAfter is a 429's or 503's Retry-After, if any);
// every other status (3xx and 4xx), and a callback address the client
// refuses (ErrAddressNotAllowed), is rejected.
func (p *Processor) post(ctx context.Context, sub Subscription, n notification, attempt int) (out outcome, code int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Callback, bytes.NewReader(n.body))
	if err != nil {
		return rejected, 0, 0, fmt.Errorf("hub: build request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "grainline-hub/1")
	h.Set(HeaderEventID, n.eventID)
	h.Set(HeaderEventType, n.eventType)
	h.Set(HeaderAttempt, strconv.Itoa(attempt))
	h.Set(HeaderSignature, Sign(sub.Secret, p.cfg.Now(), n.body))
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		var uerr interface{ Timeout() bool }
		if errors.As(err, &uerr) && uerr.Timeout() {
			return retry, 0, 0, fmt.Errorf("timeout after %v", p.cfg.Timeout)
		}
		if errors.Is(err, ErrAddressNotAllowed) {
			return rejected, 0, 0, err
		}
		return retry, 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code = resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return delivered, code, 0, nil
	case code == http.StatusTooManyRequests || code >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retry, code, retryAfter, fmt.Errorf("subscriber answered %d", code)
	default:
		return rejected, code, 0, fmt.Errorf("subscriber answered %d", code)
	}
}
