package orderstatus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/deadletter"
	"github.com/grainline/grainline/streams/streamtest"
	"github.com/grainline/grainline/tables/orderstatus"
)

type event struct {
	tenant, order, quote, status string
	rev                          int64
	idx                          int
}

func (e event) id() string { return fmt.Sprintf("%s/order/%s/%d/%d", e.tenant, e.order, e.rev, e.idx) }

func (e event) bytes(t *testing.T) []byte {
	t.Helper()
	p, _ := json.Marshal(map[string]any{"orderId": e.order, "quoteId": e.quote, "status": e.status})
	b, err := json.Marshal(kafka.Envelope{EventID: e.id(), EventType: "Order" + e.status, EventVersion: 1,
		OccurredAt: time.Date(2025, 1, 1, 0, 0, int(e.rev), 0, time.UTC), TenantID: e.tenant, Producer: "order",
		AggregateKind: "order", AggregateID: e.order, Revision: e.rev, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	b           *streamtest.Broker
	events, dlq string
	prod        *streamtest.Producer
}

const partitions = 3

func newEnv(t *testing.T, b *streamtest.Broker) *env {
	return &env{b: b, events: b.Topic(t, "oms.order.events", partitions, false),
		dlq: b.Topic(t, "grainline.deadletter", 1, false), prod: b.Producer(t)}
}

// group provisions a group's table topic and returns the group.
func (e *env) group(t *testing.T, name string) goka.Group {
	g := e.b.Group(t, name+"-"+e.events)
	e.b.CreateTopic(t, string(orderstatus.Table(g)), partitions, true)
	return g
}

func (e *env) processor(t *testing.T, g goka.Group) func() error {
	t.Helper()
	p, err := orderstatus.New(orderstatus.Config{Brokers: e.b.Brokers, Group: g,
		OrderEvents: goka.Stream(e.events), DeadLetter: goka.Stream(e.dlq)}, streamtest.Logger(), e.b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return streamtest.Start(t, p)
}

func (e *env) reader(t *testing.T, g goka.Group) *orderstatus.Reader {
	t.Helper()
	r, err := orderstatus.NewReader(orderstatus.ReaderConfig{Brokers: e.b.Brokers, Table: orderstatus.Table(g)},
		streamtest.Logger(), e.b.ViewOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Start(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Ready() {
		t.Fatal("Ready() false after WaitReady")
	}
	return r
}

func (e *env) send(t *testing.T, evs ...event) {
	t.Helper()
	for _, ev := range evs {
		e.prod.Send(t, e.events, ev.order, ev.bytes(t), map[string]string{kafka.HeaderTenant: ev.tenant})
	}
}

// rows returns the last table value per key and the number of table writes.
func rows(t *testing.T, b *streamtest.Broker, table string) (map[string]orderstatus.Status, int) {
	t.Helper()
	recs := b.ReadAll(t, table)
	out := map[string]orderstatus.Status{}
	for _, r := range recs {
		var s orderstatus.Status
		if err := json.Unmarshal(r.Value, &s); err != nil {
			t.Fatal(err)
		}
		out[r.Key] = s
	}
	return out, len(recs)
}

func waitStatus(t *testing.T, r *orderstatus.Reader, tenant, order string, rev int64) orderstatus.Status {
	t.Helper()
	var s orderstatus.Status
	streamtest.Eventually(t, 30*time.Second, fmt.Sprintf("%s at revision %d", order, rev), func() bool {
		got, ok, err := r.Get(tenant, order)
		s = got
		return err == nil && ok && got.Revision == rev
	})
	return s
}

// waitCommitted waits until group has committed every offset of topic.
func waitCommitted(t *testing.T, b *streamtest.Broker, group goka.Group, topic string) {
	t.Helper()
	client, err := sarama.NewClient(b.Brokers, streamtest.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	parts := []int32{}
	for p := int32(0); p < partitions; p++ {
		parts = append(parts, p)
	}
	streamtest.Eventually(t, 30*time.Second, "group "+string(group)+" caught up", func() bool {
		res, err := admin.ListConsumerGroupOffsets(string(group), map[string][]int32{topic: parts})
		if err != nil {
			return false
		}
		for _, p := range parts {
			hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return false
			}
			blk := res.GetBlock(topic, p)
			if hwm > 0 && (blk == nil || blk.Offset < hwm) {
				return false
			}
		}
		return true
	})
}

func TestOrderStatus(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("HighestRevisionWinsAndTenantsAreHidden", func(t *testing.T) { testHighestRevision(t, b) })
		t.Run("ReplayChangesNoRow", func(t *testing.T) { testReplay(t, b) })
	})
}

func testHighestRevision(t *testing.T, b *streamtest.Broker) {
	e := newEnv(t, b)
	g := e.group(t, "oms-order-status")
	e.processor(t, g)
	r := e.reader(t, g)

	r1 := event{"acme", "ord-1", "q-1", "Created", 1, 0}
	r2 := event{"acme", "ord-1", "q-1", "Confirmed", 2, 0}
	r3a := event{"acme", "ord-1", "q-1", "Fulfilling", 3, 0}
	r3b := event{"acme", "ord-1", "q-1", "TaskRequested", 3, 1}
	r4 := event{"acme", "ord-1", "q-1", "Completed", 4, 0}
	foreign := event{"globex", "ord-1", "q-x", "Cancelled", 9, 0}
	e.send(t, r1, r2, r1, r2, r3a, r3b, r3a, r2, foreign, r4)

	s := waitStatus(t, r, "acme", "ord-1", 4)
	if s.Status != "Completed" || s.QuoteID != "q-1" || s.TenantID != "acme" || s.EventID != r4.id() ||
		!s.UpdatedAt.Equal(time.Date(2025, 1, 1, 0, 0, 4, 0, time.UTC)) {
		t.Errorf("row = %+v", s)
	}
	table := string(orderstatus.Table(g))
	recs := b.ReadAll(t, table)
	var seen []string
	for _, rec := range recs {
		var row orderstatus.Status
		_ = json.Unmarshal(rec.Value, &row)
		seen = append(seen, row.EventID)
	}
	want := fmt.Sprint([]string{r1.id(), r2.id(), r3a.id(), r3b.id(), r4.id()})
	if fmt.Sprint(seen) != want {
		t.Errorf("table writes = %v, want %v (older and duplicate events must not write)", seen, want)
	}

	// Another tenant sees nothing of ord-1, by order id or by quote id.
	if _, ok, err := r.Get("globex", "ord-1"); ok || err != nil {
		t.Errorf("globex Get(ord-1) = %v, %v; want not found", ok, err)
	}
	if _, ok := r.ForQuote("globex", "q-1"); ok {
		t.Error("globex ForQuote(q-1) found acme's order")
	}
	if _, ok := r.ForQuote("globex", "q-x"); ok {
		t.Error("globex's colliding event reached the index")
	}
	q, ok := r.ForQuote("acme", "q-1")
	if !ok || q.OrderID != "ord-1" || q.Revision != 4 {
		t.Errorf("ForQuote(acme, q-1) = %+v, %v", q, ok)
	}
	if _, ok, err := r.Get("acme", "ord-missing"); ok || err != nil {
		t.Errorf("Get(missing) = %v, %v", ok, err)
	}
	// The event that would have overwritten acme's row went to dead letter.
	dl := b.WaitRecords(t, e.dlq, "dead letter for the foreign event", func(r []streamtest.Record) bool { return len(r) >= 1 })
	rec, err := deadletter.Decode(dl[0].Value)
	if err != nil || rec.Category != deadletter.CategoryPermanent || rec.Key != "ord-1" || rec.TenantID != "globex" {
		t.Errorf("dead letter = %+v (%v)", rec, err)
	}
}

func testReplay(t *testing.T, b *streamtest.Broker) {
	e := newEnv(t, b)
	g := e.group(t, "oms-order-status")
	stop := e.processor(t, g)
	var evs []event
	for i := range 12 {
		order := fmt.Sprintf("ord-%d", i)
		for rev := int64(1); rev <= 3; rev++ {
			evs = append(evs, event{"acme", order, "q-" + order, fmt.Sprintf("S%d", rev), rev, 0})
		}
	}
	// Duplicates and stragglers in the original stream, too.
	evs = append(evs, evs[0], evs[4], evs[1])
	e.send(t, evs...)
	waitCommitted(t, b, g, e.events)
	table := string(orderstatus.Table(g))
	before, writes := rows(t, b, table)
	if len(before) != 12 || writes != 36 {
		t.Fatalf("rows = %d, writes = %d; want 12, 36", len(before), writes)
	}

	// Replay into a fresh group from offset 0: the same rows.
	fresh := e.group(t, "oms-order-status-replay")
	e.processor(t, fresh)
	waitCommitted(t, b, fresh, e.events)
	after, _ := rows(t, b, string(orderstatus.Table(fresh)))
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("fresh group rows differ:\n got %v\nwant %v", after, before)
	}

	// Replay into the same group (offsets deleted, table recovered): no
	// table write at all.
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	admin, err := sarama.NewClusterAdmin(b.Brokers, streamtest.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	streamtest.Eventually(t, 30*time.Second, "consumer group deleted", func() bool {
		return admin.DeleteConsumerGroup(string(g)) == nil
	})
	e.processor(t, g)
	waitCommitted(t, b, g, e.events)
	again, writesAgain := rows(t, b, table)
	if writesAgain != writes || fmt.Sprint(again) != fmt.Sprint(before) {
		t.Errorf("replay into the same group wrote %d new rows", writesAgain-writes)
	}
}

func TestReaderBeforeRun(t *testing.T) {
	r, err := orderstatus.NewReader(orderstatus.ReaderConfig{Brokers: []string{"127.0.0.1:1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready() {
		t.Error("Ready before Run")
	}
	if _, _, err := r.Get("acme", "ord-1"); !errors.Is(err, orderstatus.ErrNotReady) {
		t.Errorf("Get before Run = %v, want ErrNotReady", err)
	}
	if _, ok := r.ForQuote("acme", "q-1"); ok {
		t.Error("ForQuote before Run found a row")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.WaitReady(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReady(cancelled) = %v", err)
	}
	if _, err := orderstatus.NewReader(orderstatus.ReaderConfig{}, nil); !errors.Is(err, orderstatus.ErrConfig) {
		t.Errorf("no brokers: %v", err)
	}
	if _, err := orderstatus.New(orderstatus.Config{Brokers: []string{"x:1"}, OrderEvents: "a", DeadLetter: "a"}, nil); !errors.Is(err, orderstatus.ErrConfig) {
		t.Errorf("same topics: %v", err)
	}
}
