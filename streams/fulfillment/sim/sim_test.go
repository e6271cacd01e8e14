package sim_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
)

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

func req(key string) fulfillment.Request {
	return fulfillment.Request{Tenant: "acme", TaskID: "t", TaskType: fulfillment.TypeReserveInventory, IdempotencyKey: key}
}

func TestConcurrentCallsOneEffectPerKey(t *testing.T) {
	inv, err := sim.NewInventory(sim.Config{Latency: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	refs := make([]string, 16)
	errs := make([]error, 16)
	for i := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "k1"
			if i%2 == 1 {
				key = "k2"
			}
			var rec fulfillment.Receipt
			rec, errs[i] = inv.Reserve(ctx, req(key))
			refs[i] = rec.Ref
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || refs[i] != refs[i%2] {
			t.Fatalf("call %d: ref %q err %v; refs %v", i, refs[i], err, refs)
		}
	}
	if st := inv.Stats(); st.Calls != 16 || st.Effects != 2 || len(inv.Effects()) != 2 {
		t.Errorf("stats %+v effects %v", st, inv.Effects())
	}
}

func TestOutcomes(t *testing.T) {
	ctx := context.Background()
	t.Run("TechnicalFailureDecidesNothing", func(t *testing.T) {
		p, _ := sim.NewProvisioning(sim.Config{FailureRate: 0.5, Rand: seq(0.2, 0.7)})
		if _, err := p.Provision(ctx, req("k")); !errors.Is(err, fulfillment.ErrTechnical) {
			t.Fatalf("first call: %v", err)
		}
		if _, found, err := p.Query(ctx, "k"); found || err != nil {
			t.Fatalf("query after failure: found %v err %v", found, err)
		}
		if rec, err := p.Provision(ctx, req("k")); err != nil || rec.Key != "k" || rec.Ref == "" {
			t.Fatalf("second call: %+v %v", rec, err)
		}
	})
	t.Run("RejectionIsSticky", func(t *testing.T) {
		b, _ := sim.NewBilling(sim.Config{RejectRate: 0.5, Rand: seq(0.3, 0.9)})
		if _, err := b.Activate(ctx, req("k")); !errors.Is(err, fulfillment.ErrRejected) {
			t.Fatalf("first call: %v", err)
		}
		if _, err := b.Activate(ctx, req("k")); !errors.Is(err, fulfillment.ErrRejected) {
			t.Fatalf("repeated call decided afresh: %v", err)
		}
		if _, found, err := b.Query(ctx, "k"); found || !errors.Is(err, fulfillment.ErrRejected) {
			t.Fatalf("query of rejected key: found %v err %v", found, err)
		}
		if st := b.Stats(); st.Effects != 0 || st.Rejections != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("LostReplyAfterEffect", func(t *testing.T) {
		inv, _ := sim.NewInventory(sim.Config{LostReplyRate: 0.5, Rand: seq(0.9, 0.1, 0.9)})
		_, err := inv.Reserve(ctx, req("k"))
		if !errors.Is(err, sim.ErrReplyLost) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call: %v, want a lost reply that looks like a timeout", err)
		}
		rec, found, err := inv.Query(ctx, "k")
		if !found || err != nil || rec.Key != "k" {
			t.Fatalf("query: %+v %v %v", rec, found, err)
		}
		if again, err := inv.Reserve(ctx, req("k")); err != nil || again.Ref != rec.Ref {
			t.Fatalf("repeat: %+v %v", again, err)
		}
		if st := inv.Stats(); st.Effects != 1 || st.LostReplies != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("CompensationKeepsTheRecord", func(t *testing.T) {
		inv, _ := sim.NewInventory(sim.Config{})
		if err := inv.Release(ctx, "absent"); !errors.Is(err, fulfillment.ErrRejected) {
			t.Errorf("release of nothing: %v", err)
		}
		if _, err := inv.Reserve(ctx, req("k")); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := inv.Release(ctx, "k"); err != nil {
				t.Fatal(err)
			}
		}
		if effs := inv.Effects(); len(effs) != 1 || !effs[0].Undone {
			t.Errorf("effects %+v", effs)
		}
		p, _ := sim.NewProvisioning(sim.Config{})
		_, _ = p.Provision(ctx, req("k"))
		if err := p.Deprovision(ctx, "k"); err != nil || !p.Effects()[0].Undone {
			t.Errorf("deprovision: %v %+v", err, p.Effects())
		}
	})
	t.Run("MissingKeyRejected", func(t *testing.T) {
		n, _ := sim.NewNotification(sim.Config{})
		if _, err := n.Notify(ctx, req("")); !errors.Is(err, fulfillment.ErrRejected) {
			t.Errorf("notify without key: %v", err)
		}
	})
	t.Run("LatencyHonoursContext", func(t *testing.T) {
		n, _ := sim.NewNotification(sim.Config{Latency: time.Hour})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := n.Notify(cctx, req("k")); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled call: %v", err)
		}
		if st := n.Stats(); st.Calls != 0 || st.Effects != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []sim.Config{
		{Latency: -1}, {FailureRate: 1.5}, {RejectRate: -0.1}, {LostReplyRate: 2}, {FailureRate: 0.6, RejectRate: 0.6},
	} {
		if _, err := sim.NewInventory(c); !errors.Is(err, sim.ErrConfig) {
			t.Errorf("%+v accepted: %v", c, err)
		}
	}
	if _, err := sim.NewBilling(sim.Config{FailureRate: 0.5, RejectRate: 0.5, LostReplyRate: 1}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}
