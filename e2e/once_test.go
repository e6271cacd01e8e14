package e2e

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
)

// TestExactlyOneOrder races two acceptances of one quote and then delivers
// its QuoteAccepted event a second time (the same key and value, as a relay
// retry or a replay would) and sends the order's create command once more
// directly: the quote still has exactly one order, created once, with one
// fulfillment task.
func TestExactlyOneOrder(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		quoteID := toApproved(t, d, firstOffering(t, d))
		orderID := order.IDForQuote(quoteID)
		accept := map[string]any{"documentSha256": renderDocument(t, d, quoteID)}

		// Two acceptances at once, with different idempotency keys: the
		// grain takes one command at a time, so exactly one wins.
		var wg sync.WaitGroup
		replies := make([]reply, 2)
		errs := make([]error, 2)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i], errs[i] = d.try(grains.KindQuote, "accept", quoteID, accept, opts{idemKey: "accept-" + testenv.RandomSuffix()})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		won, lost := replies[0], replies[1]
		if won.Status != 200 {
			won, lost = lost, won
		}
		won.expect(t, "winning accept", 200)
		lost.expectProblem(t, "losing accept", 409, "invalid_transition")

		done := awaitOrder(t, d, quoteID, order.StatusCompleted)
		before := d.do(t, grains.KindOrder, "get", orderID, nil, opts{}).expect(t, "get order", 200)

		// Deliver QuoteAccepted again, exactly as the relay published it.
		kc := e.kafkaClient()
		quoteTopic := e.topic(platform.TopicQuoteEvents)
		var accepted *sarama.ConsumerMessage
		for _, msg := range readTopic(t, kc, quoteTopic, quoteID) {
			if header(msg, kafka.HeaderEventType) == "QuoteAccepted" {
				accepted = msg
			}
		}
		if accepted == nil {
			t.Fatalf("no QuoteAccepted for %s on %s", quoteID, quoteTopic)
		}
		env, err := kafka.DecodeEnvelope(accepted.Value)
		if err != nil {
			t.Fatal(err)
		}
		redelivery := &sarama.ProducerMessage{
			Topic: quoteTopic, Key: sarama.ByteEncoder(accepted.Key), Value: sarama.ByteEncoder(accepted.Value),
		}
		for _, h := range accepted.Headers {
			redelivery.Headers = append(redelivery.Headers, *h)
		}
		e.produce(redelivery)
		e.awaitGroup(kc, e.group("oms-intake"), quoteTopic, highWater(t, kc, quoteTopic))

		// And a create command for the order under a new idempotency key,
		// as a misbehaving producer might send.
		cmd, err := json.Marshal(kafka.CommandMessage{
			TenantID: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID, Command: order.CmdCreate,
			Payload: env.Payload, IdempotencyKey: "e2e-direct-" + testenv.RandomSuffix(), Actor: "e2e",
		})
		if err != nil {
			t.Fatal(err)
		}
		cmdTopic := e.topic(platform.TopicOrderCommands)
		e.produce(&sarama.ProducerMessage{
			Topic: cmdTopic, Key: sarama.StringEncoder(orderID), Value: sarama.ByteEncoder(cmd),
			Headers: []sarama.RecordHeader{{Key: []byte(kafka.HeaderTenant), Value: []byte(platform.DemoTenant)}},
		})
		// Both the intake's command for the redelivery and the direct one
		// are before this mark; the router has handled them once it passes.
		e.awaitGroup(kc, e.group("oms-order-router"), cmdTopic, highWater(t, kc, cmdTopic))

		// Exactly one order, created once, with one task requested once.
		after := d.do(t, grains.KindOrder, "get", orderID, nil, opts{}).expect(t, "get order", 200)
		if after.ETag != before.ETag {
			t.Fatalf("order revision moved from %s to %s after duplicate deliveries", before.ETag, after.ETag)
		}
		var list orderList
		d.do(t, grains.KindOrder, "list", quoteID, nil, opts{}).expect(t, "orders?quoteId", 200).decode(t, &list)
		if len(list.Items) != 1 || list.Items[0].ID != orderID || !allTasksDone(list.Items[0]) || list.Items[0].Status != order.StatusCompleted {
			t.Fatalf("orders for %s: %+v, want one completed order %s with its tasks done", quoteID, list.Items, orderID)
		}
		if !allTasksDone(done) {
			t.Fatalf("completed order has tasks %+v", done.Tasks)
		}
		trail := auditTrail(t, e.p.Store, truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: orderID})
		if n := countActions(trail, order.CmdCreate); n != 1 {
			t.Fatalf("order %s audit trail has %d creates, want 1: %+v", orderID, n, trail)
		}
		created, tasks := 0, 0
		for _, msg := range readTopic(t, kc, e.topic(platform.TopicOrderEvents), orderID) {
			if header(msg, kafka.HeaderEventType) == "OrderCreated" {
				created++
			}
		}
		for _, msg := range readTopic(t, kc, e.topic(platform.TopicTasks), orderID) {
			if header(msg, kafka.HeaderEventType) == "FulfillmentTaskRequested" {
				tasks++
			}
		}
		if created != 1 || tasks != len(done.Tasks) {
			t.Fatalf("order %s: %d OrderCreated and %d FulfillmentTaskRequested published, want 1 and one per task (%d)", orderID, created, tasks, len(done.Tasks))
		}
	})
}
