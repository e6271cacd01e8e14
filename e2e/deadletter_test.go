package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/streams/deadletter"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/intake"
)

// TestDrillDeadLetterReplayedTwice: a QuoteAccepted event that the intake
// had dead-lettered, although its order was created after all, is replayed
// twice from the dead-letter topic (as `grainline deadletter replay` does).
// The intake emits its create command again each time, carrying the replay
// mark; the order grain dedupes them: one order, unchanged, one create in
// its audit trail, no external system called, nothing dead-lettered again.
func TestDrillDeadLetterReplayedTwice(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		systems := newReplaySystems(t)
		e := startPlatform(t, m, platformOpts{systems: &fulfillment.Adapters{
			Inventory: systems.inv, Provisioning: systems.prov, Billing: systems.bill, Notification: systems.note}})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		eventually(t, journeyTimeout, func() (bool, string) {
			r := d.request(t, "GET", "/readyz", nil, opts{})
			return r.Status == 200, fmt.Sprintf("/readyz %d", r.Status)
		})
		q := toApproved(t, d, firstOffering(t, d))
		acceptDocument(t, d, q, renderDocument(t, d, q))
		o := awaitOrder(t, d, q, order.StatusCompleted)
		etag := d.do(t, grains.KindOrder, "get", o.ID, nil, opts{}).expect(t, "get order", 200).ETag
		before := systems.stats()

		kc := e.kafkaClient()
		events := e.topic(platform.TopicQuoteEvents)
		commands := e.topic(platform.TopicOrderCommands)
		dlq := platform.NamespacedTopic(e.topicPfx, "grainline.deadletter.v1")
		var acceptedMsg *sarama.ConsumerMessage
		for _, msg := range readTopic(t, kc, events, q) {
			if header(msg, kafka.HeaderEventType) == intake.EventQuoteAccepted {
				acceptedMsg = msg
			}
		}
		if acceptedMsg == nil {
			t.Fatalf("no QuoteAccepted of %s on %s", q, events)
		}
		headers := map[string]string{}
		for _, h := range acceptedMsg.Headers {
			headers[string(h.Key)] = string(h.Value)
		}
		rec, _ := json.Marshal(deadletter.Record{OriginalTopic: events, Partition: acceptedMsg.Partition, Offset: acceptedMsg.Offset,
			Key: q, Value: acceptedMsg.Value, Error: "drill: the intake failed on this event", Category: deadletter.CategoryPermanent,
			Consumer: e.group("oms-intake"), Attempts: 1, Replay: deadletter.ReplayInstruction, TenantID: string(platform.DemoTenant),
			At: time.Now().UTC(), Headers: headers})
		e.produce(&sarama.ProducerMessage{Topic: dlq, Key: sarama.StringEncoder(q), Value: sarama.ByteEncoder(rec)})

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var letters []deadletter.Letter
		flt := deadletter.Filter{Topic: events, Tenant: string(platform.DemoTenant)}
		if err := deadletter.Read(ctx, kc, dlq, func(l deadletter.Letter) error {
			if flt.Match(l) && l.Record.Key == q {
				letters = append(letters, l)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(letters) != 1 {
			t.Fatalf("%d dead letters of %s, want 1", len(letters), q)
		}
		dlqBefore := highWater(t, kc, dlq)
		cmdsBefore := highWater(t, kc, commands)
		p, err := sarama.NewSyncProducerFromClient(kc)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		r := &deadletter.Replayer{Producer: p}
		for range 2 {
			if out := r.Replay(letters[0]); out.Err != nil || out.Partition != acceptedMsg.Partition {
				t.Fatalf("replay: %+v, want partition %d", out, acceptedMsg.Partition)
			}
		}

		// The intake emits the create twice more; the router delivers both.
		var hw map[int32]int64
		eventually(t, journeyTimeout, func() (bool, string) {
			hw = highWater(t, kc, commands)
			var added int64
			for p, n := range hw {
				added += n - cmdsBefore[p]
			}
			return added >= 2, fmt.Sprintf("%d commands added by the replays", added)
		})
		eventually(t, journeyTimeout, func() (bool, string) {
			return groupCaughtUp(t, e.brokers, e.group("oms-order-router"), commands, hw)
		})
		var l orderList
		d.do(t, grains.KindOrder, "list", q, nil, opts{}).expect(t, "orders", 200).decode(t, &l)
		if len(l.Items) != 1 || l.Items[0].ID != o.ID {
			t.Fatalf("quote %s lists %+v after the replays", q, l.Items)
		}
		if et := d.do(t, grains.KindOrder, "get", o.ID, nil, opts{}).expect(t, "get order", 200).ETag; et != etag {
			t.Fatalf("order %s moved from %s to %s on the replays", o.ID, etag, et)
		}
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: o.ID})
		if n := countActions(trail, order.CmdCreate); n != 1 {
			t.Fatalf("order %s has %d creates in its audit trail", o.ID, n)
		}
		if after := systems.stats(); after != before {
			t.Fatalf("external systems called by the replays:\nbefore %+v\nafter  %+v", before, after)
		}
		if after := highWater(t, kc, dlq); fmt.Sprint(after) != fmt.Sprint(dlqBefore) {
			t.Fatalf("the replays were dead-lettered: %v, before %v", after, dlqBefore)
		}
	})
}
