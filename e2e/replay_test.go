package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
	"github.com/grainline/grainline/streams/intake"
)

// replaySystems are plain simulators the test can count.
type replaySystems struct {
	inv  *sim.Inventory
	prov *sim.Provisioning
	bill *sim.Billing
	note *sim.Notification
}

func newReplaySystems(t *testing.T) replaySystems {
	t.Helper()
	var s replaySystems
	var err error
	if s.inv, err = sim.NewInventory(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	if s.prov, err = sim.NewProvisioning(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	if s.bill, err = sim.NewBilling(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	if s.note, err = sim.NewNotification(sim.Config{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s replaySystems) stats() [4]sim.Stats {
	return [4]sim.Stats{s.inv.Stats(), s.prov.Stats(), s.bill.Stats(), s.note.Stats()}
}

// groupCaughtUp reports whether group has committed every partition of
// topic up to hw.
func groupCaughtUp(t *testing.T, brokers []string, group, topic string, hw map[int32]int64) (bool, string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, kafka.Config{Brokers: brokers, ClientID: "e2e"}.WithDefaults().Sarama())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	parts := make([]int32, 0, len(hw))
	for p := range hw {
		parts = append(parts, p)
	}
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return false, err.Error()
	}
	for p, want := range hw {
		b := offs.GetBlock(topic, p)
		if want > 0 && (b == nil || b.Offset < want) {
			return false, fmt.Sprintf("%s at %s/%d: %v, high water %d", group, topic, p, b, want)
		}
	}
	return true, ""
}

// TestDrillQuoteAcceptedReplayed: the quote event topic is read again from
// offset 0 by a fresh intake group, as after a consumer-group reset. Every
// QuoteAccepted becomes a create command once more; the orders exist, so the
// creates change nothing: no new order, no new revision, no task requested
// again, no call to an external system.
func TestDrillQuoteAcceptedReplayed(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		systems := newReplaySystems(t)
		e := startPlatform(t, m, platformOpts{systems: &fulfillment.Adapters{
			Inventory: systems.inv, Provisioning: systems.prov, Billing: systems.bill, Notification: systems.note}})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		eventually(t, journeyTimeout, func() (bool, string) {
			r := d.request(t, "GET", "/readyz", nil, opts{})
			return r.Status == 200, fmt.Sprintf("/readyz %d", r.Status)
		})
		offering := firstOffering(t, d)
		var quotes []string
		for range 2 {
			id := toApproved(t, d, offering)
			acceptDocument(t, d, id, renderDocument(t, d, id))
			quotes = append(quotes, id)
		}
		etags := map[string]string{}
		for _, q := range quotes {
			o := awaitOrder(t, d, q, order.StatusCompleted)
			etags[o.ID] = d.do(t, grains.KindOrder, "get", o.ID, nil, opts{}).expect(t, "get order", 200).ETag
		}
		before := systems.stats()
		if before[0].Effects == 0 || before[3].Effects != 2 {
			t.Fatalf("before the replay: stats %+v", before)
		}

		kc := e.kafkaClient()
		commands := e.topic(platform.TopicOrderCommands)
		cmdsBefore := highWater(t, kc, commands)
		replay, err := intake.New(intake.Config{
			Brokers: e.brokers, Group: goka.Group(e.group("oms-intake-replay")),
			QuoteEvents: goka.Stream(e.topic(platform.TopicQuoteEvents)), OrderCommands: goka.Stream(commands),
			DeadLetter: goka.Stream(e.topic("grainline.deadletter.v1")),
		}, testLogger(t), kafka.Config{Brokers: e.brokers, ClientID: "e2e-replay"}.WithDefaults().GokaOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- replay.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replaying intake: %v", err)
			}
		}()
		// The replay emits one create per accepted quote again.
		var hw map[int32]int64
		eventually(t, journeyTimeout, func() (bool, string) {
			hw = highWater(t, kc, commands)
			var added int64
			for p, n := range hw {
				added += n - cmdsBefore[p]
			}
			return added >= int64(len(quotes)), fmt.Sprintf("%d commands added by the replay", added)
		})
		// The router has handled them.
		eventually(t, journeyTimeout, func() (bool, string) {
			return groupCaughtUp(t, e.brokers, e.group("oms-order-router"), commands, hw)
		})

		for _, q := range quotes {
			var l orderList
			d.do(t, grains.KindOrder, "list", q, nil, opts{}).expect(t, "orders", 200).decode(t, &l)
			if len(l.Items) != 1 {
				t.Fatalf("quote %s lists %d orders after the replay", q, len(l.Items))
			}
			id := l.Items[0].ID
			if et := d.do(t, grains.KindOrder, "get", id, nil, opts{}).expect(t, "get order", 200).ETag; et != etags[id] {
				t.Fatalf("order %s moved from %s to %s on the replay", id, etags[id], et)
			}
			trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: id})
			if n := countActions(trail, order.CmdCreate); n != 1 {
				t.Fatalf("order %s has %d creates in its audit trail", id, n)
			}
		}
		if after := systems.stats(); after != before {
			t.Fatalf("external systems called by the replay:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}

// TestDrillInventoryReplyLost: inventory reserves but every reply is lost
// (the worker's call times out after the effect). The worker records the
// call as unknown, queries inventory by the task's key, finds the
// reservation and completes the task: exactly one reservation per line, the
// order completes, and the task view shows the call and the query.
func TestDrillInventoryReplyLost(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		systems := newReplaySystems(t)
		var err error
		if systems.inv, err = sim.NewInventory(sim.Config{LostReplyRate: 1}); err != nil {
			t.Fatal(err)
		}
		e := startPlatform(t, m, platformOpts{systems: &fulfillment.Adapters{
			Inventory: systems.inv, Provisioning: systems.prov, Billing: systems.bill, Notification: systems.note}})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		eventually(t, journeyTimeout, func() (bool, string) {
			r := d.request(t, "GET", "/readyz", nil, opts{})
			return r.Status == 200, fmt.Sprintf("/readyz %d", r.Status)
		})
		// An offering with stock to reserve (the licence has none).
		id := toApproved(t, d, "sdwan-edge-m")
		acceptDocument(t, d, id, renderDocument(t, d, id))
		o := awaitOrder(t, d, id, order.StatusCompleted)

		var ts orderTasks
		d.do(t, grains.KindOrder, "tasks", o.ID, nil, opts{}).expect(t, "order tasks", 200).decode(t, &ts)
		reserves := 0
		for _, it := range ts.Items {
			if !strings.HasSuffix(it.TaskID, "/reserveInventory") {
				continue
			}
			reserves++
			if len(it.Attempts) != 2 || it.Attempts[0].Operation != "reserve" || it.Attempts[0].Outcome != "unknown" ||
				it.Attempts[1].Operation != "query" || it.Attempts[1].Outcome != "succeeded" {
				t.Fatalf("reservation attempts: %+v", it)
			}
			n := 0
			for _, ef := range systems.inv.Effects() {
				if ef.Key == it.Attempts[0].ExternalKey {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d reservations under %s, want 1", n, it.Attempts[0].ExternalKey)
			}
		}
		if st := systems.inv.Stats(); reserves == 0 || st.Effects != reserves || st.LostReplies != reserves {
			t.Fatalf("%d reservation tasks, inventory stats %+v", reserves, st)
		}
	})
}
