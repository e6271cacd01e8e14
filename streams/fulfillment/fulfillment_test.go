package fulfillment_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/streamtest"
)

func taskEvent(t *testing.T, eventID, tenant, orderID, taskID string, attempt int) []byte {
	t.Helper()
	p, _ := json.Marshal(fulfillment.Task{OrderID: orderID, QuoteID: "q-" + orderID, Status: "fulfilling",
		TaskID: taskID, TaskType: "provision", Attempt: attempt, Lines: json.RawMessage(`[{"sku":"x"}]`)})
	b, err := json.Marshal(kafka.Envelope{EventID: eventID, EventType: fulfillment.EventTaskRequested, EventVersion: 1,
		OccurredAt: time.Now().UTC(), TenantID: tenant, Producer: "order", CorrelationID: "corr-" + orderID,
		AggregateKind: "order", AggregateID: orderID, Revision: 3, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seq returns the given values in turn, then the last forever.
func seq(vs ...float64) func() float64 {
	var mu sync.Mutex
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		v := vs[0]
		if len(vs) > 1 {
			vs = vs[1:]
		}
		return v
	}
}

type env struct {
	b               *streamtest.Broker
	tasks, commands string
}

func start(t *testing.T, b *streamtest.Broker, prov fulfillment.Provisioner) env {
	t.Helper()
	e := env{b: b, tasks: b.Topic(t, "oms.fulfillment.tasks", 3, false), commands: b.Topic(t, "oms.order.commands", 3, false)}
	dlq := b.Topic(t, "grainline.deadletter", 1, false)
	w, err := fulfillment.New(fulfillment.Config{
		Brokers: b.Brokers, Group: b.Group(t, "worker-"+e.tasks), Tasks: goka.Stream(e.tasks),
		OrderCommands: goka.Stream(e.commands), DeadLetter: goka.Stream(dlq),
		Retry: backoff.Policy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
	}, prov, streamtest.Logger(), b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Start(t, w)
	return e
}

func decode(t *testing.T, r streamtest.Record) kafka.CommandMessage {
	t.Helper()
	c, err := kafka.DecodeCommand(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWorker(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("TaskBecomesCompleteTask", func(t *testing.T) {
			sim, _ := fulfillment.NewSimulator(fulfillment.SimulatorConfig{Latency: time.Millisecond})
			e := start(t, b, sim)
			b.Producer(t).Send(t, e.tasks, "ord-1", taskEvent(t, "ev-1", "acme", "ord-1", "t-1", 1), nil)
			recs := b.WaitRecords(t, e.commands, "result command", func(r []streamtest.Record) bool { return len(r) >= 1 })
			c := decode(t, recs[0])
			if recs[0].Key != "ord-1" || c.TenantID != "acme" || c.Kind != "order" || c.ID != "ord-1" ||
				c.Command != fulfillment.CommandComplete || c.IdempotencyKey != "task:t-1:1:result" ||
				c.Actor != "worker" || c.CausationID != "ev-1" || c.CorrelationID != "corr-ord-1" {
				t.Errorf("command = %+v (key %q)", c, recs[0].Key)
			}
			var pl fulfillment.CompletePayload
			if err := json.Unmarshal(c.Payload, &pl); err != nil || pl.TaskID != "t-1" || pl.Result["externalRef"] != "sim-t-1" {
				t.Errorf("payload = %s (%v)", c.Payload, err)
			}
		})
		t.Run("RejectionBecomesFailTask", func(t *testing.T) {
			sim, _ := fulfillment.NewSimulator(fulfillment.SimulatorConfig{FailureRate: 1, Rand: seq(0.5)})
			e := start(t, b, sim)
			b.Producer(t).Send(t, e.tasks, "ord-2", taskEvent(t, "ev-2", "acme", "ord-2", "t-2", 2), nil)
			recs := b.WaitRecords(t, e.commands, "result command", func(r []streamtest.Record) bool { return len(r) >= 1 })
			c := decode(t, recs[0])
			var pl fulfillment.FailPayload
			if err := json.Unmarshal(c.Payload, &pl); err != nil || c.Command != fulfillment.CommandFail ||
				pl.TaskID != "t-2" || pl.Reason == "" || c.IdempotencyKey != "task:t-2:2:result" {
				t.Errorf("command = %+v payload %s", c, c.Payload)
			}
		})
		t.Run("DuplicateTaskSameOutcome", func(t *testing.T) {
			// The first draw succeeds, a second draw would fail: a
			// duplicate must not be decided afresh.
			sim, _ := fulfillment.NewSimulator(fulfillment.SimulatorConfig{FailureRate: 0.5, Rand: seq(0.9, 0.1)})
			e := start(t, b, sim)
			p := b.Producer(t)
			ev := taskEvent(t, "ev-3", "acme", "ord-3", "t-3", 1)
			p.Send(t, e.tasks, "ord-3", ev, nil)
			p.Send(t, e.tasks, "ord-3", ev, nil)
			recs := b.WaitRecords(t, e.commands, "two result commands", func(r []streamtest.Record) bool { return len(r) >= 2 })
			a, c := decode(t, recs[0]), decode(t, recs[1])
			if a.Command != fulfillment.CommandComplete || c.Command != a.Command || c.IdempotencyKey != a.IdempotencyKey ||
				string(c.Payload) != string(a.Payload) {
				t.Errorf("conflicting outcomes: %+v / %+v", a, c)
			}
		})
		t.Run("UnknownOutcomeIsRetriedNotFailed", func(t *testing.T) {
			sim, _ := fulfillment.NewSimulator(fulfillment.SimulatorConfig{})
			flaky := &flakyProvisioner{next: sim, failures: 2}
			e := start(t, b, flaky)
			b.Producer(t).Send(t, e.tasks, "ord-4", taskEvent(t, "ev-4", "acme", "ord-4", "t-4", 1), nil)
			recs := b.WaitRecords(t, e.commands, "result command", func(r []streamtest.Record) bool { return len(r) >= 1 })
			if c := decode(t, recs[0]); c.Command != fulfillment.CommandComplete || flaky.calls() != 3 {
				t.Errorf("command %s after %d calls, want completeTask after 3", c.Command, flaky.calls())
			}
		})
	})
}

// flakyProvisioner times out a number of times before passing through.
type flakyProvisioner struct {
	mu       sync.Mutex
	next     fulfillment.Provisioner
	failures int
	n        int
}

func (f *flakyProvisioner) Provision(ctx context.Context, tenant, taskID string) (map[string]string, error) {
	f.mu.Lock()
	f.n++
	fail := f.n <= f.failures
	f.mu.Unlock()
	if fail {
		return nil, context.DeadlineExceeded
	}
	return f.next.Provision(ctx, tenant, taskID)
}

func (f *flakyProvisioner) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func TestSimulatorIdempotentPerTask(t *testing.T) {
	sim, err := fulfillment.NewSimulator(fulfillment.SimulatorConfig{FailureRate: 0.5, Rand: seq(0.1, 0.9)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = sim.Provision(ctx, "acme", "t-1")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, fulfillment.ErrRejected) {
			t.Fatalf("concurrent calls disagree: %v", errs)
		}
	}
	// Another tenant's task of the same id is decided on its own.
	if _, err := sim.Provision(ctx, "globex", "t-1"); err != nil {
		t.Errorf("globex t-1: %v", err)
	}
	if _, err := fulfillment.NewSimulator(fulfillment.SimulatorConfig{FailureRate: 1.5}); err == nil {
		t.Error("failure rate 1.5 accepted")
	}
	slow, _ := fulfillment.NewSimulator(fulfillment.SimulatorConfig{Latency: time.Hour})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := slow.Provision(cctx, "acme", "t-9"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
}
