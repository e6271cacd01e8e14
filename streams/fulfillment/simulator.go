package fulfillment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Provisioner performs one fulfillment task at the external system. A
// rejection by the system (the task cannot succeed as asked) is an error
// wrapping ErrRejected; any other error means the outcome is unknown and the
// call may be repeated. Provision must be safe for concurrent use and
// idempotent per task id.
type Provisioner interface {
	Provision(ctx context.Context, tenant, taskID string) (result map[string]string, err error)
}

// ErrRejected: the external system refused the task.
var ErrRejected = errors.New("fulfillment: rejected by the external system")

// SimulatorConfig configures the simulated external system.
type SimulatorConfig struct {
	// Latency is how long one call takes. Default 0.
	Latency time.Duration
	// FailureRate is the probability in [0,1] that a task is rejected.
	// Default 0.
	FailureRate float64
	// Rand returns a float in [0,1); it must be safe for concurrent use.
	// Default math/rand/v2.Float64. Inject a fixed source for tests.
	Rand func() float64
}

// Validate checks c: latency is not negative and the failure rate is a
// probability.
func (c SimulatorConfig) Validate() error {
	if c.Latency < 0 {
		return fmt.Errorf("fulfillment: simulator latency %v is negative", c.Latency)
	}
	if c.FailureRate < 0 || c.FailureRate > 1 {
		return fmt.Errorf("fulfillment: simulator failure rate %v outside [0,1]", c.FailureRate)
	}
	return nil
}

// Simulator is an in-memory external system. It decides a task's outcome on
// the first call and returns the same outcome on every later call for that
// tenant and task id, so a duplicated task event never produces conflicting
// results.
//
// Limitation: the outcomes live in this process's memory only. After a
// restart a redelivered task is decided afresh and may get a different
// outcome; durable attempt records replace this memory in production
// workers.
type Simulator struct {
	cfg SimulatorConfig

	mu       sync.Mutex
	outcomes map[string]outcome // tenant + "/" + task id
	calls    int
}

type outcome struct {
	result map[string]string
	err    error
}

var _ Provisioner = (*Simulator)(nil)

// NewSimulator returns a simulator, or an error for an invalid config.
func NewSimulator(cfg SimulatorConfig) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	return &Simulator{cfg: cfg, outcomes: map[string]outcome{}}, nil
}

// Provision returns the task's outcome after the configured latency.
func (s *Simulator) Provision(ctx context.Context, tenant, taskID string) (map[string]string, error) {
	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	key := tenant + "/" + taskID
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	o, ok := s.outcomes[key]
	if !ok {
		if s.cfg.Rand() < s.cfg.FailureRate {
			o.err = fmt.Errorf("%w: task %s", ErrRejected, taskID)
		} else {
			o.result = map[string]string{"externalRef": "sim-" + taskID, "system": "simulator"}
		}
		s.outcomes[key] = o
	}
	return copyMap(o.result), o.err
}

// Calls reports how often Provision completed.
func (s *Simulator) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
