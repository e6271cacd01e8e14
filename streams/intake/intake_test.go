package intake_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/deadletter"
	"github.com/grainline/grainline/streams/intake"
	"github.com/grainline/grainline/streams/streamtest"
)

func envelope(t *testing.T, eventID, eventType, tenant, quoteID string, payload any) []byte {
	t.Helper()
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(kafka.Envelope{
		EventID: eventID, EventType: eventType, EventVersion: 1, OccurredAt: time.Now().UTC(),
		TenantID: tenant, Producer: "quote", CorrelationID: "corr-" + quoteID,
		AggregateKind: "quote", AggregateID: quoteID, Revision: 7, Payload: p,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type topics struct {
	events, commands, dlq string
}

func start(t *testing.T, b *streamtest.Broker) topics {
	t.Helper()
	tp := topics{
		events:   b.Topic(t, "cpq.quote.events", 3, false),
		commands: b.Topic(t, "oms.order.commands", 3, false),
		dlq:      b.Topic(t, "grainline.deadletter", 1, false),
	}
	p, err := intake.New(intake.Config{
		Brokers:       b.Brokers,
		Group:         b.Group(t, "oms-intake-"+tp.events),
		QuoteEvents:   goka.Stream(tp.events),
		OrderCommands: goka.Stream(tp.commands),
		DeadLetter:    goka.Stream(tp.dlq),
	}, streamtest.Logger(), b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Start(t, p)
	return tp
}

func TestIntake(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("QuoteAcceptedBecomesOneCreate", func(t *testing.T) { testAccepted(t, b) })
		t.Run("DuplicateDeliveryKeepsKey", func(t *testing.T) { testDuplicate(t, b) })
		t.Run("UndecodableGoesToDeadLetter", func(t *testing.T) { testDeadLetter(t, b) })
	})
}

func testAccepted(t *testing.T, b *streamtest.Broker) {
	tp := start(t, b)
	prod := b.Producer(t)
	payload := map[string]any{"orderId": "ord-1", "quoteId": "q-1", "status": "accepted", "revision": 7}
	// An unrelated event first: it must be ignored.
	prod.Send(t, tp.events, "q-1", envelope(t, "ev-0", "QuoteSubmitted", "acme", "q-1", map[string]any{"quoteId": "q-1"}), nil)
	prod.Send(t, tp.events, "q-1", envelope(t, "ev-1", "QuoteAccepted", "acme", "q-1", payload),
		map[string]string{kafka.HeaderTenant: "acme", kafka.HeaderEventType: "QuoteAccepted", kafka.HeaderEventID: "ev-1"})

	recs := b.WaitRecords(t, tp.commands, "one create command", func(r []streamtest.Record) bool { return len(r) >= 1 })
	// Give a wrongly emitted second command (from the ignored event) the
	// chance to show up: wait until the intake group has passed both events
	// by producing a marker and seeing its command.
	prod.Send(t, tp.events, "q-2", envelope(t, "ev-2", "QuoteAccepted", "acme", "q-2", map[string]any{"orderId": "ord-2", "quoteId": "q-2"}), nil)
	recs = b.WaitRecords(t, tp.commands, "marker command", func(r []streamtest.Record) bool {
		for _, x := range r {
			if x.Key == "ord-2" {
				return true
			}
		}
		return false
	})
	var forOrd1 []streamtest.Record
	for _, r := range recs {
		if r.Key == "ord-1" {
			forOrd1 = append(forOrd1, r)
		}
	}
	if len(forOrd1) != 1 {
		t.Fatalf("commands for ord-1 = %d, want 1", len(forOrd1))
	}
	r := forOrd1[0]
	if r.Headers[kafka.HeaderTenant] != "acme" {
		t.Errorf("tenant header = %q", r.Headers[kafka.HeaderTenant])
	}
	cmd, err := kafka.DecodeCommand(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.TenantID != "acme" || cmd.Kind != "order" || cmd.ID != "ord-1" || cmd.Command != "create" ||
		cmd.Actor != "intake" || cmd.CausationID != "ev-1" || cmd.CorrelationID != "corr-q-1" ||
		cmd.IdempotencyKey != "quote-accepted:ev-1" {
		t.Errorf("command = %+v", cmd)
	}
	var got, want map[string]any
	if err := json.Unmarshal(cmd.Payload, &got); err != nil {
		t.Fatal(err)
	}
	w, _ := json.Marshal(payload)
	_ = json.Unmarshal(w, &want)
	if len(got) != len(want) || got["orderId"] != want["orderId"] || got["quoteId"] != want["quoteId"] || got["revision"] != want["revision"] {
		t.Errorf("payload = %v, want %v", got, want)
	}
}

func testDuplicate(t *testing.T, b *streamtest.Broker) {
	tp := start(t, b)
	prod := b.Producer(t)
	ev := envelope(t, "ev-dup", "QuoteAccepted", "acme", "q-9", map[string]any{"orderId": "ord-9", "quoteId": "q-9"})
	prod.Send(t, tp.events, "q-9", ev, nil)
	prod.Send(t, tp.events, "q-9", ev, nil)
	recs := b.WaitRecords(t, tp.commands, "two commands", func(r []streamtest.Record) bool { return len(r) >= 2 })
	if len(recs) != 2 {
		t.Fatalf("commands = %d, want 2", len(recs))
	}
	var keys []string
	for _, r := range recs {
		cmd, err := kafka.DecodeCommand(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if r.Key != "ord-9" {
			t.Errorf("key = %q", r.Key)
		}
		keys = append(keys, cmd.IdempotencyKey)
	}
	if keys[0] != keys[1] || keys[0] != intake.IdempotencyKey("ev-dup") {
		t.Errorf("idempotency keys = %v, want both %q", keys, intake.IdempotencyKey("ev-dup"))
	}
}

func testDeadLetter(t *testing.T, b *streamtest.Broker) {
	tp := start(t, b)
	prod := b.Producer(t)
	prod.Send(t, tp.events, "q-bad", []byte("{not json"), map[string]string{kafka.HeaderTenant: "acme"})
	prod.Send(t, tp.events, "q-bad", envelope(t, "ev-ok", "QuoteAccepted", "acme", "q-bad", map[string]any{"orderId": "ord-ok"}), nil)

	dl := b.WaitRecords(t, tp.dlq, "dead letter", func(r []streamtest.Record) bool { return len(r) >= 1 })
	rec, err := deadletter.Decode(dl[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.OriginalTopic != tp.events || rec.Key != "q-bad" || string(rec.Value) != "{not json" ||
		rec.Category != deadletter.CategoryDecode || rec.Attempts != 1 || rec.Replay != deadletter.ReplayInstruction ||
		rec.TenantID != "acme" || rec.Error == "" || rec.Consumer == "" {
		t.Errorf("dead-letter record = %+v", rec)
	}
	if dl[0].Key != "q-bad" {
		t.Errorf("dead-letter key = %q", dl[0].Key)
	}
	// Processing continued past the bad message.
	b.WaitRecords(t, tp.commands, "command after the bad message", func(r []streamtest.Record) bool { return len(r) == 1 && r[0].Key == "ord-ok" })
}
