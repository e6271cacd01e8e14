package fulfillment_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
	"github.com/grainline/grainline/streams/streamtest"
)

type typedTask struct {
	eventID, orderID, taskID, taskType, lineID string
	attempt                                    int
}

func typedEvent(t *testing.T, tt typedTask) []byte {
	t.Helper()
	p, _ := json.Marshal(fulfillment.Task{OrderID: tt.orderID, QuoteID: "q-" + tt.orderID, Status: "inProgress",
		TaskID: tt.taskID, TaskType: tt.taskType, Attempt: tt.attempt, LineID: tt.lineID,
		Lines: json.RawMessage(`[{"lineId":"1","sku":"x"}]`)})
	b, err := json.Marshal(kafka.Envelope{EventID: tt.eventID, EventType: fulfillment.EventTaskRequested, EventVersion: 1,
		OccurredAt: time.Now().UTC(), TenantID: "acme", Producer: "order", CorrelationID: "corr-" + tt.orderID,
		AggregateKind: "order", AggregateID: tt.orderID, Revision: 3, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type adapterEnv struct {
	tasks, commands, dlq string
}

func startAdapters(t *testing.T, b *streamtest.Broker, ads fulfillment.Adapters, policies map[string]fulfillment.TaskPolicy) adapterEnv {
	t.Helper()
	e := adapterEnv{tasks: b.Topic(t, "oms.fulfillment.tasks", 3, false), commands: b.Topic(t, "oms.order.commands", 3, false),
		dlq: b.Topic(t, "grainline.deadletter", 1, false)}
	w, err := fulfillment.NewWithAdapters(fulfillment.Config{
		Brokers: b.Brokers, Group: b.Group(t, "worker-"+e.tasks), Tasks: goka.Stream(e.tasks),
		OrderCommands: goka.Stream(e.commands), DeadLetter: goka.Stream(e.dlq),
		Retry:    backoff.Policy{Initial: 2 * time.Millisecond, Max: 10 * time.Millisecond},
		Policies: policies,
	}, ads, streamtest.Logger(), b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Start(t, w)
	return e
}

// results decodes the result commands of taskID.
func results(t *testing.T, recs []streamtest.Record, taskID string) []kafka.CommandMessage {
	t.Helper()
	var out []kafka.CommandMessage
	for _, r := range recs {
		c := decode(t, r)
		var pl struct {
			TaskID string `json:"taskId"`
		}
		if err := json.Unmarshal(c.Payload, &pl); err != nil {
			t.Fatal(err)
		}
		if pl.TaskID == taskID {
			out = append(out, c)
		}
	}
	return out
}

// waitResults waits until taskID has n result commands. To tell that no
// further command for it follows, callers send a later task of the same
// order (same partition, so handled after) and wait for that one.
func waitResults(t *testing.T, b *streamtest.Broker, topic, taskID string, n int) []kafka.CommandMessage {
	t.Helper()
	recs := b.WaitRecords(t, topic, taskID+" result", func(r []streamtest.Record) bool {
		return len(results(t, r, taskID)) >= n
	})
	return results(t, recs, taskID)
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func failReason(t *testing.T, c kafka.CommandMessage) string {
	t.Helper()
	return failPayload(t, c).Reason
}

func failPayload(t *testing.T, c kafka.CommandMessage) fulfillment.FailPayload {
	t.Helper()
	var pl fulfillment.FailPayload
	if err := json.Unmarshal(c.Payload, &pl); err != nil {
		t.Fatal(err)
	}
	return pl
}

// queryEvent is a FulfillmentTaskQueryRequested of a billing task.
func queryEvent(t *testing.T, eventID, orderID, taskID string, attempt, round int) []byte {
	t.Helper()
	p, _ := json.Marshal(fulfillment.Task{OrderID: orderID, QuoteID: "q-" + orderID, Status: "inProgress",
		TaskID: taskID, TaskType: fulfillment.TypeActivateBilling, Attempt: attempt, LineID: "1", Round: round})
	b, err := json.Marshal(kafka.Envelope{EventID: eventID, EventType: fulfillment.EventTaskQueryRequested, EventVersion: 1,
		OccurredAt: time.Now().UTC(), TenantID: "acme", Producer: "order", AggregateKind: "order", AggregateID: orderID,
		Revision: 7, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compensationEvent is a compensation task of type typ undoing compensates.
func compensationEvent(t *testing.T, eventID, orderID, taskID, typ, compensates string) []byte {
	t.Helper()
	p, _ := json.Marshal(fulfillment.Task{OrderID: orderID, QuoteID: "q-" + orderID, Status: "pendingCancellation",
		TaskID: taskID, TaskType: typ, Attempt: 1, LineID: "1", Compensates: compensates})
	b, err := json.Marshal(kafka.Envelope{EventID: eventID, EventType: fulfillment.EventTaskRequested, EventVersion: 1,
		OccurredAt: time.Now().UTC(), TenantID: "acme", Producer: "order", AggregateKind: "order", AggregateID: orderID,
		Revision: 9, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAdapters(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("InventoryTimesOutAfterSucceeding", func(t *testing.T) {
			inv, err := sim.NewInventory(sim.Config{LostReplyRate: 1, Rand: seq(0.9)})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv}, nil)
			p := b.Producer(t)
			p.Send(t, e.tasks, "ord-1", typedEvent(t, typedTask{"ev-1", "ord-1", "ord-1/1/reserveInventory", fulfillment.TypeReserveInventory, "1", 1}), nil)
			// A later task of the same order fences the first one's output.
			p.Send(t, e.tasks, "ord-1", typedEvent(t, typedTask{"ev-2", "ord-1", "ord-1/2/reserveInventory", fulfillment.TypeReserveInventory, "2", 1}), nil)
			waitResults(t, b, e.commands, "ord-1/2/reserveInventory", 1)
			cs := waitResults(t, b, e.commands, "ord-1/1/reserveInventory", 1)
			if len(cs) != 1 || cs[0].Command != fulfillment.CommandComplete || cs[0].IdempotencyKey != "task:ord-1/1/reserveInventory:1:result" {
				t.Fatalf("result commands = %+v, want one completeTask", cs)
			}
			var pl fulfillment.CompletePayload
			if err := json.Unmarshal(cs[0].Payload, &pl); err != nil || pl.Result["externalRef"] == "" {
				t.Errorf("payload %s (%v)", cs[0].Payload, err)
			}
			key := fulfillment.ExternalKey("acme", "ord-1/1/reserveInventory")
			n := 0
			for _, ef := range inv.Effects() {
				if ef.Key == key {
					n++
					if pl.Result["externalRef"] != ef.Receipt.Ref {
						t.Errorf("completeTask ref %q, reservation %q", pl.Result["externalRef"], ef.Receipt.Ref)
					}
				}
			}
			st := inv.Stats()
			if n != 1 || st.Effects != 2 || st.Calls != 2 || st.LostReplies != 2 || st.Queries != 2 {
				t.Errorf("reservations under key %d, stats %+v; want 1 reservation, 2 calls, 2 queries", n, st)
			}
		})
		t.Run("BusinessRejectionFailsTask", func(t *testing.T) {
			inv, err := sim.NewInventory(sim.Config{RejectRate: 1, Rand: seq(0.5)})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv}, nil)
			b.Producer(t).Send(t, e.tasks, "ord-2", typedEvent(t, typedTask{"ev-1", "ord-2", "t-2", fulfillment.TypeReserveInventory, "1", 2}), nil)
			cs := waitResults(t, b, e.commands, "t-2", 1)
			if cs[0].Command != fulfillment.CommandFail || !strings.Contains(failReason(t, cs[0]), "refused") ||
				failPayload(t, cs[0]).Cause != fulfillment.CauseBusinessRejection || cs[0].IdempotencyKey != "task:t-2:2:result" {
				t.Errorf("command %+v payload %s", cs[0], cs[0].Payload)
			}
			if st := inv.Stats(); st.Calls != 1 || st.Effects != 0 || st.Rejections != 1 {
				t.Errorf("stats %+v: a rejection must not be retried", st)
			}
		})
		t.Run("TechnicalFailuresThenSuccess", func(t *testing.T) {
			prov, err := sim.NewProvisioning(sim.Config{FailureRate: 0.5, Rand: seq(0.1, 0.2, 0.9)})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Provisioning: prov}, nil)
			b.Producer(t).Send(t, e.tasks, "ord-3", typedEvent(t, typedTask{"ev-1", "ord-3", "t-3", fulfillment.TypeProvision, "", 1}), nil)
			cs := waitResults(t, b, e.commands, "t-3", 1)
			if cs[0].Command != fulfillment.CommandComplete {
				t.Errorf("command %s %s", cs[0].Command, cs[0].Payload)
			}
			if st := prov.Stats(); st.Calls != 3 || st.Failures != 2 || st.Effects != 1 || st.Queries != 0 {
				t.Errorf("stats %+v; want 3 calls, 2 failures, 1 effect, no query after a certain failure", st)
			}
		})
		t.Run("ExhaustionFailsTask", func(t *testing.T) {
			inv, err := sim.NewInventory(sim.Config{FailureRate: 1, Rand: seq(0.5)})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv},
				map[string]fulfillment.TaskPolicy{fulfillment.TypeReserveInventory: {Attempts: 3, Timeout: time.Second}})
			b.Producer(t).Send(t, e.tasks, "ord-4", typedEvent(t, typedTask{"ev-1", "ord-4", "t-4", fulfillment.TypeReserveInventory, "1", 1}), nil)
			cs := waitResults(t, b, e.commands, "t-4", 1)
			if cs[0].Command != fulfillment.CommandFail || failReason(t, cs[0]) != fulfillment.ReasonRetriesExhausted ||
				failPayload(t, cs[0]).Cause != fulfillment.CauseRetriesExhausted {
				t.Errorf("command %s %s", cs[0].Command, cs[0].Payload)
			}
			if st := inv.Stats(); st.Calls != 3 || st.Effects != 0 {
				t.Errorf("stats %+v; want the 3 attempts of the reserveInventory policy", st)
			}
		})
		t.Run("UnknownOutcomeAbsentIsRetriedWithSameKey", func(t *testing.T) {
			inner, err := sim.NewInventory(sim.Config{})
			check(t, err)
			inv := &droppingInventory{Inventory: inner, drops: 1}
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv}, nil)
			b.Producer(t).Send(t, e.tasks, "ord-5", typedEvent(t, typedTask{"ev-1", "ord-5", "t-5", fulfillment.TypeReserveInventory, "1", 1}), nil)
			cs := waitResults(t, b, e.commands, "t-5", 1)
			if cs[0].Command != fulfillment.CommandComplete {
				t.Errorf("command %s %s", cs[0].Command, cs[0].Payload)
			}
			keys := inv.seen()
			want := fulfillment.ExternalKey("acme", "t-5")
			if len(keys) != 2 || keys[0] != want || keys[1] != want {
				t.Errorf("keys sent %v, want %q twice", keys, want)
			}
			if st := inner.Stats(); st.Effects != 1 || st.Queries != 1 {
				t.Errorf("stats %+v; want one query before the retry and one reservation", st)
			}
		})
		t.Run("UnresolvedUnknownOutcomeExhausts", func(t *testing.T) {
			inner, err := sim.NewInventory(sim.Config{})
			check(t, err)
			inv := &droppingInventory{Inventory: inner, drops: 100}
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv},
				map[string]fulfillment.TaskPolicy{fulfillment.TypeReserveInventory: {Attempts: 4}})
			b.Producer(t).Send(t, e.tasks, "ord-8", typedEvent(t, typedTask{"ev-1", "ord-8", "t-8", fulfillment.TypeReserveInventory, "1", 1}), nil)
			cs := waitResults(t, b, e.commands, "t-8", 1)
			if cs[0].Command != fulfillment.CommandFail || failReason(t, cs[0]) != fulfillment.ReasonRetriesExhausted ||
				failPayload(t, cs[0]).Cause != fulfillment.CauseUnknownOutcome {
				t.Errorf("command %s %s", cs[0].Command, cs[0].Payload)
			}
			// Each attempt after the first queries first, finds nothing and
			// calls again: 4 calls, 3 queries.
			if st := inner.Stats(); len(inv.seen()) != 4 || st.Queries != 3 || st.Effects != 0 {
				t.Errorf("calls %d, stats %+v; want 4 calls and 3 queries", len(inv.seen()), st)
			}
		})
		t.Run("DuplicateTaskNoSecondEffect", func(t *testing.T) {
			bill, err := sim.NewBilling(sim.Config{})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Billing: bill}, nil)
			p := b.Producer(t)
			ev := typedEvent(t, typedTask{"ev-1", "ord-6", "t-6", fulfillment.TypeActivateBilling, "1", 1})
			p.Send(t, e.tasks, "ord-6", ev, nil)
			p.Send(t, e.tasks, "ord-6", ev, nil)
			cs := waitResults(t, b, e.commands, "t-6", 2)
			if cs[0].Command != fulfillment.CommandComplete || cs[1].IdempotencyKey != cs[0].IdempotencyKey ||
				string(cs[1].Payload) != string(cs[0].Payload) {
				t.Errorf("outcomes differ: %+v / %+v", cs[0], cs[1])
			}
			if st := bill.Stats(); st.Calls != 2 || st.Effects != 1 {
				t.Errorf("stats %+v; want 2 calls and 1 activation", st)
			}
		})
		t.Run("AsyncBillingAwaitsCallbackThenQueryResolves", func(t *testing.T) {
			bill, err := sim.NewAsyncBilling(sim.Config{}, sim.AsyncConfig{DropAll: true, Delay: time.Hour})
			check(t, err)
			t.Cleanup(bill.Close)
			e := startAdapters(t, b, fulfillment.Adapters{Billing: bill}, nil)
			p := b.Producer(t)
			task := "ord-10/1/activateBilling"
			p.Send(t, e.tasks, "ord-10", typedEvent(t, typedTask{"ev-1", "ord-10", task, fulfillment.TypeActivateBilling, "1", 1}), nil)
			cs := waitResults(t, b, e.commands, task, 1)
			var aw fulfillment.AwaitPayload
			if err := json.Unmarshal(cs[0].Payload, &aw); err != nil || cs[0].Command != fulfillment.CommandAwait ||
				aw.Awaiting != fulfillment.AwaitingCallback || cs[0].IdempotencyKey != "task:"+task+":1:await" {
				t.Fatalf("accepted activation: %+v %s", cs[0], cs[0].Payload)
			}
			// The callback did not come; still undecided: the query round
			// reports the wait again, under its own key.
			p.Send(t, e.tasks, "ord-10", queryEvent(t, "ev-2", "ord-10", task, 1, 1), nil)
			cs = waitResults(t, b, e.commands, task, 2)
			if cs[1].Command != fulfillment.CommandAwait || cs[1].IdempotencyKey != "task:"+task+":1:await:1" {
				t.Fatalf("query of a pending activation: %+v", cs[1])
			}
			if st := bill.Stats(); st.Accepted != 1 || st.Queries != 1 || st.Calls != 1 {
				t.Fatalf("stats %+v: want one acceptance and one query, no second call", st)
			}
		})
		t.Run("QueryRoundCompletesOrCallsAgain", func(t *testing.T) {
			bill, err := sim.NewAsyncBilling(sim.Config{}, sim.AsyncConfig{DropAll: true})
			check(t, err)
			t.Cleanup(bill.Close)
			e := startAdapters(t, b, fulfillment.Adapters{Billing: bill}, nil)
			p := b.Producer(t)
			// Activated and decided (callback dropped): the query finds it.
			done := "ord-11/1/activateBilling"
			_, err = bill.Activate(context.Background(), fulfillment.Request{Tenant: "acme", OrderID: "ord-11", TaskID: done,
				IdempotencyKey: fulfillment.ExternalKey("acme", done)})
			check(t, err)
			streamtest.Eventually(t, 10*time.Second, "activation decided", func() bool { return bill.Stats().Effects == 1 })
			p.Send(t, e.tasks, "ord-11", queryEvent(t, "ev-1", "ord-11", done, 1, 2), nil)
			cs := waitResults(t, b, e.commands, done, 1)
			var pl fulfillment.CompletePayload
			if err := json.Unmarshal(cs[0].Payload, &pl); err != nil || cs[0].Command != fulfillment.CommandComplete ||
				pl.Result["externalRef"] != bill.Effects()[0].Receipt.Ref || cs[0].IdempotencyKey != "task:"+done+":1:result" {
				t.Fatalf("query of an active activation: %+v %s", cs[0], cs[0].Payload)
			}
			// Never reached the billing system: absent, so the worker calls
			// again with the same key and awaits the callback.
			lost := "ord-11/2/activateBilling"
			p.Send(t, e.tasks, "ord-11", queryEvent(t, "ev-2", "ord-11", lost, 1, 1), nil)
			cs = waitResults(t, b, e.commands, lost, 1)
			if cs[0].Command != fulfillment.CommandAwait || cs[0].IdempotencyKey != "task:"+lost+":1:await:1" {
				t.Fatalf("query of an absent activation: %+v", cs[0])
			}
			if st := bill.Stats(); st.Accepted != 2 || st.Queries != 2 {
				t.Fatalf("stats %+v: want two acceptances (one per key) after two queries", st)
			}
		})
		t.Run("CompensationsUndoTheCompensatedTask", func(t *testing.T) {
			inv, err := sim.NewInventory(sim.Config{})
			check(t, err)
			prov, err := sim.NewProvisioning(sim.Config{})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv, Provisioning: prov}, nil)
			p := b.Producer(t)
			p.Send(t, e.tasks, "ord-9", typedEvent(t, typedTask{"ev-1", "ord-9", "ord-9/1/reserveInventory", fulfillment.TypeReserveInventory, "1", 1}), nil)
			p.Send(t, e.tasks, "ord-9", typedEvent(t, typedTask{"ev-2", "ord-9", "ord-9/1/provision", fulfillment.TypeProvision, "1", 1}), nil)
			p.Send(t, e.tasks, "ord-9", compensationEvent(t, "ev-3", "ord-9", "ord-9/1/deprovision", fulfillment.TypeDeprovision, "ord-9/1/provision"), nil)
			p.Send(t, e.tasks, "ord-9", compensationEvent(t, "ev-4", "ord-9", "ord-9/1/releaseReservation", fulfillment.TypeReleaseReservation, "ord-9/1/reserveInventory"), nil)
			// Undoing what never happened is a rejection.
			p.Send(t, e.tasks, "ord-9", compensationEvent(t, "ev-5", "ord-9", "ord-9/2/releaseReservation", fulfillment.TypeReleaseReservation, "ord-9/2/reserveInventory"), nil)
			for _, id := range []string{"ord-9/1/deprovision", "ord-9/1/releaseReservation"} {
				if cs := waitResults(t, b, e.commands, id, 1); cs[0].Command != fulfillment.CommandComplete {
					t.Errorf("%s: %s %s", id, cs[0].Command, cs[0].Payload)
				}
			}
			if cs := waitResults(t, b, e.commands, "ord-9/2/releaseReservation", 1); cs[0].Command != fulfillment.CommandFail ||
				failPayload(t, cs[0]).Cause != fulfillment.CauseBusinessRejection {
				t.Errorf("release of nothing: %s %s", cs[0].Command, cs[0].Payload)
			}
			pe, ie := prov.Effects(), inv.Effects()
			if len(pe) != 1 || len(ie) != 1 || !pe[0].Undone || !ie[0].Undone || pe[0].UndoSeq >= ie[0].UndoSeq {
				t.Errorf("provisioning %+v, inventory %+v: want both undone, deprovision first", pe, ie)
			}
		})
		t.Run("EachTaskTypeRoutedToItsAdapter", func(t *testing.T) {
			inv, err := sim.NewInventory(sim.Config{})
			check(t, err)
			prov, err := sim.NewProvisioning(sim.Config{})
			check(t, err)
			bill, err := sim.NewBilling(sim.Config{})
			check(t, err)
			note, err := sim.NewNotification(sim.Config{})
			check(t, err)
			e := startAdapters(t, b, fulfillment.Adapters{Inventory: inv, Provisioning: prov, Billing: bill, Notification: note}, nil)
			p := b.Producer(t)
			types := []string{fulfillment.TypeReserveInventory, fulfillment.TypeProvision, fulfillment.TypeActivateBilling, fulfillment.TypeNotify}
			for i, typ := range types {
				p.Send(t, e.tasks, "ord-7", typedEvent(t, typedTask{"ev-" + typ, "ord-7", "ord-7/" + typ, typ, "", i + 1}), nil)
			}
			p.Send(t, e.tasks, "ord-7", typedEvent(t, typedTask{"ev-x", "ord-7", "ord-7/unknown", "teleport", "", 1}), nil)
			for _, typ := range types {
				if cs := waitResults(t, b, e.commands, "ord-7/"+typ, 1); cs[0].Command != fulfillment.CommandComplete {
					t.Errorf("%s: %s %s", typ, cs[0].Command, cs[0].Payload)
				}
			}
			b.WaitRecords(t, e.dlq, "dead-lettered unknown task type", func(r []streamtest.Record) bool { return len(r) >= 1 })
			systems := map[string]interface{ Effects() []sim.Effect }{
				fulfillment.TypeReserveInventory: inv, fulfillment.TypeProvision: prov,
				fulfillment.TypeActivateBilling: bill, fulfillment.TypeNotify: note,
			}
			for typ, s := range systems {
				effs := s.Effects()
				if len(effs) != 1 || effs[0].Request.TaskType != typ || effs[0].Key != fulfillment.ExternalKey("acme", "ord-7/"+typ) {
					t.Errorf("%s system effects %+v", typ, effs)
				}
			}
		})
	})
}

// droppingInventory times out its first calls before they reach the
// system (the request was lost on the way), and records the keys it was
// sent.
type droppingInventory struct {
	*sim.Inventory
	mu    sync.Mutex
	drops int
	keys  []string
}

func (d *droppingInventory) Reserve(ctx context.Context, req fulfillment.Request) (fulfillment.Receipt, error) {
	d.mu.Lock()
	d.keys = append(d.keys, req.IdempotencyKey)
	drop := d.drops > 0
	d.drops--
	d.mu.Unlock()
	if drop {
		return fulfillment.Receipt{}, context.DeadlineExceeded
	}
	return d.Inventory.Reserve(ctx, req)
}

func (d *droppingInventory) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.keys...)
}

func TestConfigPolicy(t *testing.T) {
	c := fulfillment.Config{Brokers: []string{"x"}, Policies: map[string]fulfillment.TaskPolicy{
		fulfillment.TypeActivateBilling: {Attempts: 9},
	}}.WithDefaults()
	if p := c.Policy(fulfillment.TypeActivateBilling); p.Attempts != 9 || p.Timeout != 30*time.Second {
		t.Errorf("billing policy %+v", p)
	}
	if p := c.Policy(fulfillment.TypeNotify); p.Attempts != 5 || p.Timeout != 30*time.Second {
		t.Errorf("default policy %+v", p)
	}
	c.Policies["bad"] = fulfillment.TaskPolicy{Attempts: -1}
	if err := c.Validate(); err == nil {
		t.Error("negative attempts accepted")
	}
	if _, err := fulfillment.NewWithAdapters(fulfillment.Config{Brokers: []string{"x"}}, fulfillment.Adapters{}, nil); err == nil {
		t.Error("no adapters accepted")
	}
}
