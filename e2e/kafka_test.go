package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
)

// kafkaClient is a sarama client on the platform's brokers, closed when the
// test ends.
func (e *env) kafkaClient() sarama.Client {
	e.t.Helper()
	c, err := sarama.NewClient(e.brokers, kafka.Config{Brokers: e.brokers, ClientID: "e2e"}.WithDefaults().Sarama())
	if err != nil {
		e.t.Fatalf("kafka client: %v", err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// highWater returns the next offset of every partition of topic.
func highWater(t *testing.T, c sarama.Client, topic string) map[int32]int64 {
	t.Helper()
	if err := c.RefreshMetadata(topic); err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	hw := make(map[int32]int64, len(parts))
	for _, p := range parts {
		off, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("offset of %s/%d: %v", topic, p, err)
		}
		hw[p] = off
	}
	return hw
}

// readTopic returns every message of topic up to its current high water
// marks whose key is key.
func readTopic(t *testing.T, c sarama.Client, topic, key string) []*sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	var out []*sarama.ConsumerMessage
	for p, hw := range highWater(t, c, topic) {
		first, err := c.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("oldest offset of %s/%d: %v", topic, p, err)
		}
		if hw <= first {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, first)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		timeout := time.After(30 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				if string(m.Key) == key {
					out = append(out, m)
				}
				if m.Offset >= hw-1 {
					break read
				}
			case err := <-pc.Errors():
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			case <-timeout:
				t.Fatalf("consume %s/%d: offset %d not reached in 30s", topic, p, hw-1)
			}
		}
		pc.Close()
	}
	return out
}

func header(m *sarama.ConsumerMessage, name string) string {
	for _, h := range m.Headers {
		if string(h.Key) == name {
			return string(h.Value)
		}
	}
	return ""
}

// produce writes one message with the production producer configuration
// (goka's partitioner, acks=all).
func (e *env) produce(msg *sarama.ProducerMessage) {
	e.t.Helper()
	p, err := sarama.NewSyncProducer(e.brokers, kafka.Config{Brokers: e.brokers, ClientID: "e2e"}.WithDefaults().Sarama())
	if err != nil {
		e.t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(msg); err != nil {
		e.t.Fatalf("produce to %s: %v", msg.Topic, err)
	}
}

// awaitGroup polls until consumer group has committed offsets at or beyond
// target on every partition of topic: it has processed everything written
// before target was taken.
func (e *env) awaitGroup(c sarama.Client, group, topic string, target map[int32]int64) {
	e.t.Helper()
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		e.t.Fatalf("cluster admin: %v", err)
	}
	// Closing the admin would close the shared client; it is closed with it.
	parts := make([]int32, 0, len(target))
	for p := range target {
		parts = append(parts, p)
	}
	eventually(e.t, journeyTimeout, func() (bool, string) {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
		if err != nil {
			return false, fmt.Sprintf("offsets of %s: %v", group, err)
		}
		for p, want := range target {
			if want == 0 {
				continue
			}
			b := resp.GetBlock(topic, p)
			if b == nil || b.Offset < want {
				got := int64(-1)
				if b != nil {
					got = b.Offset
				}
				return false, fmt.Sprintf("group %s at %s/%d offset %d, want %d", group, topic, p, got, want)
			}
		}
		return true, ""
	})
}
