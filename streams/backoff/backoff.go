// Package backoff is exponential backoff with jitter for stream processors
// that retry a transient failure in place (blocking their partition, which
// keeps the order per key).
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy configures the waits between attempts.
type Policy struct {
	// Initial is the wait after the first failure. Default 100ms.
	Initial time.Duration
	// Max caps one wait. Default 10s.
	Max time.Duration
	// Multiplier grows the wait per failure. Default 2.
	Multiplier float64
	// Jitter is the fraction of a wait that is randomised: a wait d becomes
	// uniform in [d*(1-Jitter), d]. Default 0.5; 0 < Jitter <= 1.
	Jitter float64
	// Rand returns a float in [0,1); it must be safe for concurrent use.
	// Default math/rand/v2.Float64.
	Rand func() float64
}

// ErrPolicy reports an invalid policy.
var ErrPolicy = errors.New("backoff: invalid policy")

// WithDefaults returns p with zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	if p.Initial == 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max == 0 {
		p.Max = 10 * time.Second
	}
	if p.Multiplier == 0 {
		p.Multiplier = 2
	}
	if p.Jitter == 0 {
		p.Jitter = 0.5
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// Validate checks p after defaults.
func (p Policy) Validate() error {
	p = p.WithDefaults()
	switch {
	case p.Initial < 0 || p.Max < p.Initial:
		return fmt.Errorf("%w: need 0 <= Initial <= Max", ErrPolicy)
	case p.Multiplier < 1:
		return fmt.Errorf("%w: Multiplier %v < 1", ErrPolicy, p.Multiplier)
	case p.Jitter < 0 || p.Jitter > 1:
		return fmt.Errorf("%w: Jitter %v outside (0,1]", ErrPolicy, p.Jitter)
	}
	return nil
}

// Wait returns the wait after the given number of failures (1 = first).
func (p Policy) Wait(failures int) time.Duration {
	p = p.WithDefaults()
	d := float64(p.Initial)
	for i := 1; i < failures && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	if d > float64(p.Max) {
		d = float64(p.Max)
	}
	d -= d * p.Jitter * p.Rand()
	return time.Duration(d)
}

// Retry calls fn until it returns nil, retry(err) reports false, or ctx
// ends. It returns the number of attempts made and the last error (ctx's
// error when ctx ended first). onRetry, if not nil, is told about every
// failure that will be retried and the wait before the next attempt.
func Retry(ctx context.Context, p Policy, retry func(error) bool, onRetry func(attempt int, err error, wait time.Duration), fn func(ctx context.Context) error) (int, error) {
	p = p.WithDefaults()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return attempt - 1, err
		}
		err := fn(ctx)
		if err == nil || !retry(err) {
			return attempt, err
		}
		wait := p.Wait(attempt)
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, ctx.Err()
		case <-t.C:
		}
	}
}
