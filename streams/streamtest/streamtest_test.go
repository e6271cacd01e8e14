package streamtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/streams/streamtest"
)

// oneMessage marks the first message of a claim and ends the session.
type oneMessage struct{ got chan struct{} }

func (oneMessage) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (oneMessage) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h oneMessage) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		s.Commit()
		select {
		case h.got <- struct{}{}:
		default:
		}
		return nil
	}
	return nil
}

// Topics and consumer groups a test makes on the real Kafka are gone once
// the test has ended; topics made by others are left alone.
func TestRealKafkaCleanup(t *testing.T) {
	b := &streamtest.Broker{Name: "kafka", Brokers: testenv.Kafka(t)}
	other := b.Topic(t, "streamtest.other", 1, false) // this test's, deleted at its end
	var topic, table, group string
	t.Run("user", func(t *testing.T) {
		topic = b.Topic(t, "streamtest.cleanup", 2, false)
		table = topic + "-table"
		b.CreateTopic(t, table, 2, true)
		group = string(b.Group(t, "streamtest-group-"+topic))
		b.Producer(t).Send(t, topic, "k", []byte("v"), nil)

		cg, err := sarama.NewConsumerGroup(b.Brokers, group, streamtest.Sarama())
		if err != nil {
			t.Fatal(err)
		}
		h := oneMessage{got: make(chan struct{}, 1)}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- cg.Consume(ctx, []string{topic}, h) }()
		select {
		case <-h.got:
		case err := <-done:
			t.Fatalf("consume ended before the message: %v", err)
		case <-ctx.Done():
			t.Fatal("no message consumed")
		}
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("consume: %v", err)
		}
		if err := cg.Close(); err != nil {
			t.Fatal(err)
		}
		admin, err := sarama.NewClusterAdmin(b.Brokers, streamtest.Sarama())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := groups[group]; !ok {
			t.Fatalf("group %s not on the broker while in use", group)
		}
	})

	admin, err := sarama.NewClusterAdmin(b.Brokers, streamtest.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	streamtest.Eventually(t, 30*time.Second, "topics and group deleted", func() bool {
		topics, err := admin.ListTopics()
		if err != nil {
			return false
		}
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			return false
		}
		_, t1 := topics[topic]
		_, t2 := topics[table]
		_, g := groups[group]
		return !t1 && !t2 && !g
	})
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics[other]; !ok {
		t.Fatalf("topic %s of the enclosing test deleted when a subtest ended", other)
	}
}
