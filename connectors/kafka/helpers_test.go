package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/internal/testenv"
)

// brokerKind names one of the two brokers every suite runs against.
type brokerKind string

const (
	embeddedBroker brokerKind = "embedded"
	realKafka      brokerKind = "kafka"
)

// forEachBroker runs fn against the in-process broker and against the real
// Apache Kafka of internal/testenv.
func forEachBroker(t *testing.T, fn func(t *testing.T, kind brokerKind, brokers []string)) {
	t.Run(string(embeddedBroker), func(t *testing.T) {
		t.Parallel()
		e := startEmbedded(t, kafka.EmbeddedConfig{})
		fn(t, embeddedBroker, e.Brokers())
	})
	t.Run(string(realKafka), func(t *testing.T) {
		t.Parallel()
		fn(t, realKafka, testenv.Kafka(t))
	})
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("GRAINLINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startEmbedded(t testing.TB, cfg kafka.EmbeddedConfig) *kafka.Embedded {
	t.Helper()
	e, err := kafka.StartEmbedded(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

func clientConfig(brokers []string) kafka.Config {
	return kafka.Config{Brokers: brokers, ClientID: "grainline-test", RetryBackoff: 50 * time.Millisecond, RetryMax: 5}
}

func newAdmin(t testing.TB, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, clientConfig(brokers).Sarama())
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

func newProducer(t testing.TB, brokers []string) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, clientConfig(brokers).Sarama())
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// streamTopology is a topology of one event topic with unique names.
func streamTopology(partitions int32) (kafka.Topology, string) {
	sfx := testenv.RandomSuffix()
	topic := "t" + sfx + ".quote.events.v1"
	return kafka.Topology{
		OwnedPrefixes: []string{"t" + sfx + "."},
		Topics: []kafka.Topic{{
			Name: topic, Owner: "quote", Key: "quote id", Partitions: partitions,
			Replication: 1, Retention: "168h",
		}},
	}, topic
}

// applyTopology creates top's topics; cleanupTopology removes them, and
// top's groups, when t ends.
func applyTopology(t testing.TB, brokers []string, top kafka.Topology) {
	t.Helper()
	cleanupTopology(t, brokers, top)
	applyTopologyKept(t, brokers, top)
}

// applyTopologyKept creates top's topics and leaves them when t ends: for a
// broker whose data goes away with the test anyway.
func applyTopologyKept(t testing.TB, brokers []string, top kafka.Topology) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kafka.Apply(ctx, newAdmin(t, brokers), top); err != nil {
		t.Fatalf("apply topology: %v", err)
	}
}

// cleanupTopology deletes, when t ends, the topics under top's owned
// prefixes and top's consumer groups. Test topologies own a random prefix,
// so all of that is the test's own making. Failures are logged; topics or
// groups already gone are not failures.
func cleanupTopology(t testing.TB, brokers []string, top kafka.Topology) {
	t.Helper()
	if len(top.OwnedPrefixes) == 0 {
		t.Fatalf("test topology without an owned prefix: nothing would be cleaned up")
	}
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(brokers, clientConfig(brokers).Sarama())
		if err != nil {
			t.Logf("cleanup: cluster admin: %v", err)
			return
		}
		defer admin.Close()
		for _, g := range top.Groups {
			if err := deleteGroup(admin, g.Name); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
		topics, err := admin.ListTopics()
		if err != nil {
			t.Logf("cleanup: list topics: %v", err)
			return
		}
		for name := range topics {
			if !ownedBy(top, name) {
				continue
			}
			if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				t.Logf("cleanup: delete topic %s: %v", name, err)
			}
		}
	})
}

// ownedBy reports whether topic is declared in top or under one of its
// owned prefixes.
func ownedBy(top kafka.Topology, topic string) bool {
	for _, p := range top.OwnedPrefixes {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	for _, tp := range top.Topics {
		if tp.Name == topic {
			return true
		}
	}
	return false
}

// deleteGroup deletes a consumer group; a group that never existed or is
// gone is not an error. Members that just left may keep the group non-empty
// for a moment: it retries for up to 15s.
func deleteGroup(admin sarama.ClusterAdmin, group string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := admin.DeleteConsumerGroup(group)
		switch {
		case err == nil, errors.Is(err, sarama.ErrGroupIDNotFound):
			return nil
		case errors.Is(err, sarama.ErrNonEmptyGroup) && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond)
		default:
			return fmt.Errorf("delete consumer group %s: %w", group, err)
		}
	}
}

// gokaPartition is the partition goka's view and processor look a key up in:
// FNV-32a, as int32, negated when negative, modulo the partition count
// (goka View.hash).
func gokaPartition(key string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	v := int32(h.Sum32())
	if v < 0 {
		v = -v
	}
	return v % partitions
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readTopic consumes every partition of topic from the oldest offset until
// want messages arrived (or fails after timeout), then returns them.
func readTopic(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumer(brokers, clientConfig(brokers).Sarama())
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var mu sync.Mutex
	var got []*sarama.ConsumerMessage
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				mu.Lock()
				got = append(got, m)
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	eventually(t, timeout, fmt.Sprintf("%d messages on %s", want, topic), func() bool { return count() >= want })
	mu.Lock()
	defer mu.Unlock()
	return append([]*sarama.ConsumerMessage(nil), got...)
}

// memOutbox is an in-memory outbox with fault injection.
type memOutbox struct {
	mu       sync.Mutex
	recs     []truth.OutboxRecord
	acked    map[int64]bool
	ackOrder []int64
	ackFails int                 // fail this many AckOutbox calls first
	check    func([]int64) error // called before an ack is recorded
}

func newMemOutbox() *memOutbox { return &memOutbox{acked: map[int64]bool{}} }

func (o *memOutbox) add(ev truth.Event) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	seq := int64(len(o.recs) + 1)
	o.recs = append(o.recs, truth.OutboxRecord{Seq: seq, Event: ev})
	return seq
}

func (o *memOutbox) PendingOutbox(_ context.Context, limit int) ([]truth.OutboxRecord, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []truth.OutboxRecord
	for _, r := range o.recs {
		if len(out) == limit {
			break
		}
		if !o.acked[r.Seq] {
			out = append(out, r)
		}
	}
	return out, nil
}

func (o *memOutbox) AckOutbox(_ context.Context, seqs []int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ackFails > 0 {
		o.ackFails--
		return fmt.Errorf("injected ack failure")
	}
	if o.check != nil {
		if err := o.check(seqs); err != nil {
			return err
		}
	}
	for _, s := range seqs {
		o.acked[s] = true
		o.ackOrder = append(o.ackOrder, s)
	}
	return nil
}

func (o *memOutbox) ackedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.acked)
}

// recordingProducer remembers the event ids of every batch the wrapped
// producer reported as published.
type recordingProducer struct {
	sarama.SyncProducer
	mu    sync.Mutex
	sent  map[string]bool
	calls int
}

func (p *recordingProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	err := p.SyncProducer.SendMessages(msgs)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if err == nil {
		for _, m := range msgs {
			for _, h := range m.Headers {
				if string(h.Key) == kafka.HeaderEventID {
					p.sent[string(h.Value)] = true
				}
			}
		}
	}
	return err
}

func (p *recordingProducer) wasSent(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[id]
}

func event(topic, tenant, aggregate string, rev int64, i int) truth.Event {
	return truth.Event{
		EventID:       fmt.Sprintf("%s/quote/%s/%d/%d", tenant, aggregate, rev, i),
		Type:          "QuoteRevised",
		Version:       1,
		Topic:         topic,
		Tenant:        tenant,
		AggregateKind: "quote",
		AggregateID:   aggregate,
		Revision:      rev,
		OccurredAt:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Producer:      "quote",
		CorrelationID: "corr-1",
		Payload:       []byte(fmt.Sprintf(`{"n":%d}`, rev)),
	}
}
