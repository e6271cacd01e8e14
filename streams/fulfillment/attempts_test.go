package fulfillment_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lovoo/goka"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
	"github.com/grainline/grainline/streams/streamtest"
)

// records opens a truth store on a fresh, migrated PostgreSQL database.
func records(t *testing.T) *postgres.Store {
	t.Helper()
	dsn := testenv.PostgresDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	check(t, err)
	_, err = migrations.Up(ctx, pool)
	pool.Close()
	check(t, err)
	s, err := postgres.Open(ctx, postgres.Config{DSN: dsn}, nil)
	check(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// workerEnv is one set of topics several worker instances can share.
type workerEnv struct {
	tasks, commands, dlq string
	group                goka.Group
}

func newWorkerEnv(t *testing.T, b *streamtest.Broker) workerEnv {
	e := workerEnv{tasks: b.Topic(t, "oms.fulfillment.tasks", 3, false), commands: b.Topic(t, "oms.order.commands", 3, false),
		dlq: b.Topic(t, "grainline.deadletter", 1, false)}
	e.group = b.Group(t, "worker-"+e.tasks)
	return e
}

// start runs one worker instance of e; stop stops it as a crash would leave
// its task: uncommitted.
func (e workerEnv) start(t *testing.T, b *streamtest.Broker, ads fulfillment.Adapters, recs truth.AttemptStore) (stop func() error) {
	t.Helper()
	w, err := fulfillment.NewWithAdapters(fulfillment.Config{
		Brokers: b.Brokers, Group: e.group, Tasks: goka.Stream(e.tasks),
		OrderCommands: goka.Stream(e.commands), DeadLetter: goka.Stream(e.dlq),
		Retry:   backoff.Policy{Initial: 2 * time.Millisecond, Max: 10 * time.Millisecond},
		Records: recs,
	}, ads, streamtest.Logger(), b.ProcessorOptions()...)
	check(t, err)
	return streamtest.Start(t, w)
}

func fmtAttempts(as []truth.Attempt) string {
	s := ""
	for _, a := range as {
		s += fmt.Sprintf("#%d %s/%s %s %q; ", a.N, a.System, a.Operation, a.Outcome, a.Detail)
	}
	return s
}

// wantAttempts compares the operation and outcome of each attempt.
func wantAttempts(t *testing.T, got []truth.Attempt, want ...string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].N == i+1 && got[i].Operation+" "+string(got[i].Outcome) == want[i] &&
			got[i].ExternalKey != "" && !got[i].StartedAt.IsZero() &&
			(got[i].Outcome == truth.OutcomeStarted) == got[i].EndedAt.IsZero()
	}
	if !ok {
		t.Fatalf("attempts: %s want %q", fmtAttempts(got), want)
	}
}

func TestAttemptRecords(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("CallAndReconcilingQueryAreRecorded", func(t *testing.T) {
			st := records(t)
			// The first call reserves but its reply is lost; the query finds
			// the reservation.
			inv, err := sim.NewInventory(sim.Config{LostReplyRate: 1, Rand: seq(0.9)})
			check(t, err)
			e := newWorkerEnv(t, b)
			e.start(t, b, fulfillment.Adapters{Inventory: inv}, st)
			task := "ord-1/1/reserveInventory"
			b.Producer(t).Send(t, e.tasks, "ord-1", typedEvent(t, typedTask{"ev-1", "ord-1", task, fulfillment.TypeReserveInventory, "1", 1}), nil)
			if cs := waitResults(t, b, e.commands, task, 1); cs[0].Command != fulfillment.CommandComplete {
				t.Fatalf("result %+v", cs[0])
			}
			got, err := st.Attempts(context.Background(), "acme", task)
			check(t, err)
			wantAttempts(t, got, "reserve unknown", "query succeeded")
			if got[1].Detail != "found "+inv.Effects()[0].Receipt.Ref || got[0].ExternalKey != fulfillment.ExternalKey("acme", task) {
				t.Errorf("attempts %s, effect %+v", fmtAttempts(got), inv.Effects()[0])
			}
		})
		t.Run("RejectionAndTechnicalFailureAreRecorded", func(t *testing.T) {
			st := records(t)
			// A technical failure, then a business rejection.
			prov, err := sim.NewProvisioning(sim.Config{FailureRate: 0.3, RejectRate: 0.3, Rand: seq(0.1, 0.5)})
			check(t, err)
			e := newWorkerEnv(t, b)
			e.start(t, b, fulfillment.Adapters{Provisioning: prov}, st)
			task := "ord-2/1/provision"
			b.Producer(t).Send(t, e.tasks, "ord-2", typedEvent(t, typedTask{"ev-2", "ord-2", task, fulfillment.TypeProvision, "1", 1}), nil)
			if cs := waitResults(t, b, e.commands, task, 1); cs[0].Command != fulfillment.CommandFail {
				t.Fatalf("result %+v", cs[0])
			}
			got, err := st.Attempts(context.Background(), "acme", task)
			check(t, err)
			wantAttempts(t, got, "provision technical", "provision rejected")
		})
		t.Run("StoreDownLeavesTaskUncommitted", func(t *testing.T) {
			st := records(t)
			inv, err := sim.NewInventory(sim.Config{})
			check(t, err)
			flaky := &failingStore{AttemptStore: st}
			flaky.down.Store(true)
			e := newWorkerEnv(t, b)
			// The worker fails while the store is down (goka stops on the
			// uncommitted task); a new instance takes the task up once the
			// store is back.
			w, err := fulfillment.NewWithAdapters(fulfillment.Config{
				Brokers: b.Brokers, Group: e.group, Tasks: goka.Stream(e.tasks),
				OrderCommands: goka.Stream(e.commands), DeadLetter: goka.Stream(e.dlq), Records: flaky,
			}, fulfillment.Adapters{Inventory: inv}, streamtest.Logger(), b.ProcessorOptions()...)
			check(t, err)
			task := "ord-3/1/reserveInventory"
			b.Producer(t).Send(t, e.tasks, "ord-3", typedEvent(t, typedTask{"ev-3", "ord-3", task, fulfillment.TypeReserveInventory, "1", 1}), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := w.Run(ctx); err == nil {
				t.Fatal("worker ran on with its attempt records down")
			}
			if n := len(inv.Effects()); n != 0 {
				t.Fatalf("%d effects without a recorded attempt", n)
			}
			flaky.down.Store(false)
			e.start(t, b, fulfillment.Adapters{Inventory: inv}, flaky)
			if cs := waitResults(t, b, e.commands, task, 1); cs[0].Command != fulfillment.CommandComplete {
				t.Fatalf("result %+v", cs[0])
			}
			got, _ := st.Attempts(context.Background(), "acme", task)
			wantAttempts(t, got, "reserve succeeded")
		})
	})
}

// failingStore fails every read and start while down, and every end once
// dead (a process that died cannot finish its records).
type failingStore struct {
	truth.AttemptStore
	down, dead atomic.Bool
}

var errStoreDown = errors.New("store down")

func (f *failingStore) Attempts(ctx context.Context, tenant, taskID string) ([]truth.Attempt, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.AttemptStore.Attempts(ctx, tenant, taskID)
}

func (f *failingStore) StartAttempt(ctx context.Context, a truth.Attempt) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.AttemptStore.StartAttempt(ctx, a)
}

func (f *failingStore) EndAttempt(ctx context.Context, tenant, taskID string, n int, o truth.AttemptOutcome, detail string, at time.Time) error {
	if f.dead.Load() {
		return errStoreDown
	}
	return f.AttemptStore.EndAttempt(ctx, tenant, taskID, n, o, detail, at)
}

// hangingInventory makes its call take effect at the inner system and then
// never answer until the caller gives up: a worker killed in this window has
// caused an effect it never heard of.
type hangingInventory struct {
	*sim.Inventory
	once     sync.Once
	effected chan struct{}
}

func (h *hangingInventory) Reserve(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	if _, err := h.Inventory.Reserve(context.WithoutCancel(ctx), req); err != nil {
		return fulfillment.Receipt{}, err
	}
	h.once.Do(func() { close(h.effected) })
	<-ctx.Done()
	return fulfillment.Receipt{}, ctx.Err()
}

// TestDrillWorkerKilledMidTask: a worker is stopped between "attempt
// started" and "completed", after the system took effect; its records
// cannot be finished (it died). A new worker instance of the same group gets
// the uncommitted task again, finds the attempt left started, queries the
// system instead of calling it, and completes the task: one reservation.
func TestDrillWorkerKilledMidTask(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		st := records(t)
		// The external system lives outside both worker instances.
		inv, err := sim.NewInventory(sim.Config{})
		check(t, err)
		e := newWorkerEnv(t, b)
		dying := &failingStore{AttemptStore: st}
		hang := &hangingInventory{Inventory: inv, effected: make(chan struct{})}
		stop := e.start(t, b, fulfillment.Adapters{Inventory: hang}, dying)

		task := "ord-k/1/reserveInventory"
		b.Producer(t).Send(t, e.tasks, "ord-k", typedEvent(t, typedTask{"ev-k", "ord-k", task, fulfillment.TypeReserveInventory, "1", 1}), nil)
		select {
		case <-hang.effected:
		case <-time.After(60 * time.Second):
			t.Fatal("the first worker never called inventory")
		}
		dying.dead.Store(true)
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("first worker: %v", err)
		}
		got, err := st.Attempts(context.Background(), "acme", task)
		check(t, err)
		wantAttempts(t, got, "reserve started")
		if rs := results(t, b.ReadAll(t, e.commands), task); len(rs) != 0 {
			t.Fatalf("the killed worker sent %+v", rs)
		}

		e.start(t, b, fulfillment.Adapters{Inventory: inv}, st)
		cs := waitResults(t, b, e.commands, task, 1)
		if cs[0].Command != fulfillment.CommandComplete {
			t.Fatalf("result %+v", cs[0])
		}
		got, err = st.Attempts(context.Background(), "acme", task)
		check(t, err)
		wantAttempts(t, got, "reserve started", "query succeeded")
		if s := inv.Stats(); s.Effects != 1 || s.Calls != 1 || s.Queries != 1 {
			t.Errorf("inventory stats %+v; want one call (the killed worker's), one query, one effect", s)
		}
	})
}
