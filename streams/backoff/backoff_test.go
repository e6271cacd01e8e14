package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitGrowsCapsAndJitters(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Multiplier: 2, Jitter: 0.5, Rand: func() float64 { return 0 }}
	want := []time.Duration{10, 20, 40, 80, 80}
	for i, w := range want {
		if got := p.Wait(i + 1); got != w*time.Millisecond {
			t.Errorf("Wait(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	p.Rand = func() float64 { return 0.999999 }
	if got := p.Wait(1); got < 5*time.Millisecond || got > 5*time.Millisecond+time.Microsecond {
		t.Errorf("max jitter Wait(1) = %v, want ~5ms", got)
	}
}

func TestValidate(t *testing.T) {
	if err := (Policy{Multiplier: 0.5}).Validate(); !errors.Is(err, ErrPolicy) {
		t.Errorf("Multiplier 0.5: %v", err)
	}
	if err := (Policy{Jitter: 2}).Validate(); !errors.Is(err, ErrPolicy) {
		t.Errorf("Jitter 2: %v", err)
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestRetryUntilSuccessAndPermanent(t *testing.T) {
	p := Policy{Initial: time.Millisecond, Max: time.Millisecond}
	errT, errP := errors.New("transient"), errors.New("permanent")
	calls := 0
	n, err := Retry(context.Background(), p, func(err error) bool { return err == errT }, nil, func(context.Context) error {
		calls++
		if calls < 3 {
			return errT
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("Retry = %d, %v; want 3, nil", n, err)
	}
	n, err = Retry(context.Background(), p, func(err error) bool { return err == errT }, nil, func(context.Context) error { return errP })
	if err != errP || n != 1 {
		t.Errorf("permanent: Retry = %d, %v; want 1, permanent", n, err)
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{Initial: time.Hour, Max: time.Hour}
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := Retry(ctx, p, func(error) bool { return true }, func(int, error, time.Duration) { close(started) },
			func(context.Context) error { return errors.New("down") })
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Retry did not return after cancel")
	}
}
