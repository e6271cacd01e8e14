package deadletter_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/streams/deadletter"
	"github.com/grainline/grainline/streams/intake"
	"github.com/grainline/grainline/streams/router"
	"github.com/grainline/grainline/streams/streamtest"
)

// gate rejects every command as a domain outcome until it is opened: the
// router dead-letters them (permanent), and delivers them once open.
type gate struct {
	mu    sync.Mutex
	open  bool
	calls []call.Command
}

func (g *gate) Send(_ context.Context, cmd call.Command) (call.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, cmd)
	if !g.open {
		return call.Result{}, grains.Errorf(grains.CodeInvalidTransition, "order %s is not ready", cmd.ID)
	}
	return call.Result{Revision: 1}, nil
}

func (g *gate) setOpen() { g.mu.Lock(); g.open = true; g.mu.Unlock() }

func (g *gate) snapshot() []call.Command {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]call.Command(nil), g.calls...)
}

type rig struct {
	b                     *streamtest.Broker
	events, commands, dlq string
	intakeGroup, router   string
	gate                  *gate
	client                sarama.Client
	kcfg                  kafka.Config
}

// newRig runs the intake and the router on fresh topics: an undecodable
// quote event is dead-lettered by the intake (decode), and the command of a
// valid QuoteAccepted by the router (permanent, the gate is closed).
func newRig(t *testing.T, b *streamtest.Broker) *rig {
	t.Helper()
	r := &rig{
		b:        b,
		events:   b.Topic(t, "cpq.quote.events", 3, false),
		commands: b.Topic(t, "oms.order.commands", 3, false),
		dlq:      b.Topic(t, "grainline.deadletter", 1, false),
		gate:     &gate{},
	}
	ig := b.Group(t, "oms-intake-"+r.events)
	rg := b.Group(t, "oms-order-router-"+r.commands)
	r.intakeGroup, r.router = string(ig), string(rg)
	in, err := intake.New(intake.Config{Brokers: b.Brokers, Group: ig, QuoteEvents: goka.Stream(r.events),
		OrderCommands: goka.Stream(r.commands), DeadLetter: goka.Stream(r.dlq)}, streamtest.Logger(), b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := router.New(router.Config{Brokers: b.Brokers, Group: rg, Commands: goka.Stream(r.commands),
		DeadLetter: goka.Stream(r.dlq)}, r.gate, streamtest.Logger(), b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Start(t, in)
	streamtest.Start(t, rt)
	r.kcfg = kafka.Config{Brokers: b.Brokers}.WithDefaults()
	r.client, err = sarama.NewClient(b.Brokers, r.kcfg.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.client.Close() })
	return r
}

func (r *rig) read(t *testing.T, f deadletter.Filter) []deadletter.Letter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []deadletter.Letter
	if err := deadletter.Read(ctx, r.client, r.dlq, func(l deadletter.Letter) error {
		if f.Match(l) {
			out = append(out, l)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func accepted(t *testing.T, eventID, tenant, quoteID, orderID string) []byte {
	t.Helper()
	p, _ := json.Marshal(map[string]string{"orderId": orderID, "quoteId": quoteID})
	b, err := json.Marshal(kafka.Envelope{EventID: eventID, EventType: intake.EventQuoteAccepted, EventVersion: 1,
		OccurredAt: time.Now().UTC(), TenantID: tenant, Producer: "quote", AggregateKind: "quote", AggregateID: quoteID,
		Revision: 3, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestListAndReplay(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		r := newRig(t, b)
		prod := b.Producer(t)
		started := time.Now().Add(-time.Second)
		prod.Send(t, r.events, "q-bad", []byte("{not json"), map[string]string{
			kafka.HeaderTenant: "acme", kafka.HeaderEventID: "ev-bad", "x-trace": "keep-me"})
		prod.Send(t, r.events, "q-1", accepted(t, "ev-1", "globex", "q-1", "ord-1"),
			map[string]string{kafka.HeaderTenant: "globex", kafka.HeaderEventID: "ev-1", kafka.HeaderEventType: intake.EventQuoteAccepted})
		b.WaitRecords(t, r.dlq, "two dead letters", func(rs []streamtest.Record) bool { return len(rs) == 2 })

		all := r.read(t, deadletter.Filter{})
		if len(all) != 2 {
			t.Fatalf("read %d letters, want 2", len(all))
		}
		byTenant := func(tenant string) deadletter.Letter {
			for _, l := range all {
				if l.Record.TenantID == tenant {
					return l
				}
			}
			t.Fatalf("no letter of tenant %s in %+v", tenant, all)
			return deadletter.Letter{}
		}
		bad, rejected := byTenant("acme"), byTenant("globex")
		if bad.Record.Consumer != r.intakeGroup || bad.Record.Category != deadletter.CategoryDecode ||
			bad.Record.OriginalTopic != r.events || bad.Record.Key != "q-bad" ||
			bad.Record.Headers["x-trace"] != "keep-me" || bad.Record.Headers[kafka.HeaderEventID] != "ev-bad" {
			t.Errorf("intake's dead letter = %+v", bad.Record)
		}
		if rejected.Record.Consumer != r.router || rejected.Record.Category != deadletter.CategoryPermanent ||
			rejected.Record.OriginalTopic != r.commands || rejected.Record.Key != "ord-1" ||
			rejected.Record.Headers[kafka.HeaderEventID] != "ev-1" {
			t.Errorf("router's dead letter = %+v", rejected.Record)
		}

		for name, tc := range map[string]struct {
			f    deadletter.Filter
			want []deadletter.Letter
		}{
			"tenant":        {deadletter.Filter{Tenant: "acme"}, []deadletter.Letter{bad}},
			"consumer":      {deadletter.Filter{Consumer: r.router}, []deadletter.Letter{rejected}},
			"category":      {deadletter.Filter{Category: deadletter.CategoryDecode}, []deadletter.Letter{bad}},
			"topic":         {deadletter.Filter{Topic: r.commands}, []deadletter.Letter{rejected}},
			"since past":    {deadletter.Filter{Since: started}, all},
			"since future":  {deadletter.Filter{Since: time.Now().Add(time.Hour)}, nil},
			"position":      {deadletter.Filter{Positions: []deadletter.Position{rejected.Position}}, []deadletter.Letter{rejected}},
			"two criteria":  {deadletter.Filter{Tenant: "acme", Category: deadletter.CategoryPermanent}, nil},
			"unknown group": {deadletter.Filter{Consumer: "nobody"}, nil},
		} {
			got := r.read(t, tc.f)
			if len(got) != len(tc.want) {
				t.Errorf("%s: %d letters, want %d", name, len(got), len(tc.want))
				continue
			}
			for i := range got {
				if got[i].Position != tc.want[i].Position {
					t.Errorf("%s: letter %d at %s, want %s", name, i, got[i].Position, tc.want[i].Position)
				}
			}
		}

		// A dry run says where the message would go and sends nothing.
		dry := &deadletter.Replayer{Partitions: r.client.Partitions, Partitioner: r.kcfg.Sarama().Producer.Partitioner, DryRun: true}
		for _, l := range all {
			o := dry.Replay(l)
			if o.Err != nil || o.Offset != -1 || o.Partition != l.Record.Partition {
				t.Errorf("dry run of %s: %+v, want partition %d", l.Position, o, l.Record.Partition)
			}
		}

		// The cause is fixed; replay both.
		r.gate.setOpen()
		sp, err := sarama.NewSyncProducerFromClient(r.client)
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Close()
		live := &deadletter.Replayer{Producer: sp}
		for _, l := range all {
			if o := live.Replay(l); o.Err != nil || o.Partition != l.Record.Partition || o.Offset < 0 {
				t.Fatalf("replay of %s: %+v", l.Position, o)
			}
		}

		// Exactly one more message on each original topic (the dry run sent
		// nothing), in the original partition, with key, value and headers.
		events := b.ReadAll(t, r.events)
		if len(events) != 3 {
			t.Fatalf("%d messages on the event topic, want the 2 sent and 1 replayed", len(events))
		}
		checkReplayed(t, events, bad, map[string]string{kafka.HeaderTenant: "acme", kafka.HeaderEventID: "ev-bad", "x-trace": "keep-me"})
		cmds := b.ReadAll(t, r.commands)
		if len(cmds) != 2 {
			t.Fatalf("%d messages on the command topic, want intake's and the replayed one", len(cmds))
		}
		checkReplayed(t, cmds, rejected, map[string]string{kafka.HeaderTenant: "globex", kafka.HeaderEventID: "ev-1"})

		// The router delivers the replayed command with its idempotency key
		// (the grain dedupes a repeat); the intake dead-letters the still
		// undecodable event again, and the new record names the one replayed.
		streamtest.Eventually(t, 30*time.Second, "the replayed command delivered", func() bool { return len(r.gate.snapshot()) == 2 })
		calls := r.gate.snapshot()
		if calls[0].IdempotencyKey != intake.IdempotencyKey("ev-1") || calls[1].IdempotencyKey != calls[0].IdempotencyKey {
			t.Errorf("idempotency keys %q, %q; want both %q", calls[0].IdempotencyKey, calls[1].IdempotencyKey, intake.IdempotencyKey("ev-1"))
		}
		b.WaitRecords(t, r.dlq, "the replayed event dead-lettered again", func(rs []streamtest.Record) bool { return len(rs) == 3 })
		again := r.read(t, deadletter.Filter{Tenant: "acme"})
		if len(again) != 2 || again[1].Record.ReplayOf() != bad.Position.String() || again[0].Record.ReplayOf() != "" {
			t.Fatalf("acme's dead letters %+v: want the original and one replay-of %s", again, bad.Position)
		}
	})
}

func checkReplayed(t *testing.T, msgs []streamtest.Record, l deadletter.Letter, headers map[string]string) {
	t.Helper()
	var found []streamtest.Record
	for _, m := range msgs {
		if m.Headers[deadletter.HeaderReplayOf] == l.Position.String() {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d messages replaying %s, want 1", len(found), l.Position)
	}
	m := found[0]
	if m.Partition != l.Record.Partition || m.Key != l.Record.Key || string(m.Value) != string(l.Record.Value) {
		t.Errorf("replay of %s: partition %d key %q value %q; want %d %q %q", l.Position, m.Partition, m.Key, m.Value,
			l.Record.Partition, l.Record.Key, l.Record.Value)
	}
	for k, v := range headers {
		if m.Headers[k] != v {
			t.Errorf("replay of %s: header %s = %q, want %q", l.Position, k, m.Headers[k], v)
		}
	}
}
