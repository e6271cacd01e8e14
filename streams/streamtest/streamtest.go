// Package streamtest runs stream-processor tests against two brokers: a fresh
// in-process Kafka-protocol broker (kfake) per test, and the real Apache Kafka
// that ./scripts/services.sh starts (internal/testenv). It offers the goka and
// sarama configuration those tests need, topic creation with unique names,
// producing, reading a topic back, and polling with a deadline. What a test
// creates on the shared real Kafka (topics, consumer groups) is deleted when
// the test ends.
package streamtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/internal/testenv"
)

// Broker is one Kafka cluster a test talks to.
type Broker struct {
	Name    string // "kfake" or "kafka"
	Brokers []string
}

// Each runs suite once per broker kind as subtests: "kfake" on a fresh
// in-process cluster, "kafka" on the real test Kafka. A real Kafka that is
// not reachable fails the "kafka" subtest with testenv's message.
func Each(t *testing.T, suite func(t *testing.T, b *Broker)) {
	t.Helper()
	t.Run("kfake", func(t *testing.T) {
		suite(t, Fake(t))
	})
	t.Run("kafka", func(t *testing.T) {
		suite(t, &Broker{Name: "kafka", Brokers: testenv.Kafka(t)})
	})
}

// Fake starts an in-process single-broker cluster, closed when t ends.
func Fake(t testing.TB) *Broker {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Broker{Name: "kfake", Brokers: c.ListenAddrs()}
}

// Sarama returns a fresh sarama configuration: Kafka 3.9 protocol, acks=all,
// goka's FNV-32a partitioner, consumers from the oldest offset, goka's
// copartitioning group strategy.
func Sarama() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_9_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 10
	c.Producer.Partitioner = sarama.NewCustomHashPartitioner(goka.DefaultHasher())
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{goka.CopartitioningStrategy}
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = time.Second
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

// ProcessorOptions configures one goka processor for this broker with the
// production configuration (connectors/kafka.Config.GokaOptions).
func (b *Broker) ProcessorOptions() []goka.ProcessorOption {
	return kafka.Config{Brokers: b.Brokers}.GokaOptions()
}

// ViewOptions configures one goka view for this broker with the production
// configuration (connectors/kafka.Config.GokaViewOptions).
func (b *Broker) ViewOptions() []goka.ViewOption {
	return kafka.Config{Brokers: b.Brokers}.GokaViewOptions()
}

// Topic creates a topic named prefix plus a random suffix with the given
// partitions and returns its name. Compacted topics (group tables) get
// cleanup.policy=compact.
func (b *Broker) Topic(t testing.TB, prefix string, partitions int32, compacted bool) string {
	t.Helper()
	name := prefix + "-" + testenv.RandomSuffix()
	b.CreateTopic(t, name, partitions, compacted)
	return name
}

// CreateTopic creates topic name and waits until its metadata is visible.
// On the real Kafka the topic is deleted when t ends (a kfake cluster goes
// away whole).
func (b *Broker) CreateTopic(t testing.TB, name string, partitions int32, compacted bool) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(b.Brokers, Sarama())
	if err != nil {
		t.Fatalf("cluster admin on %v: %v", b.Brokers, err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}
	if compacted {
		policy := "compact"
		detail.ConfigEntries = map[string]*string{"cleanup.policy": &policy}
	}
	if err := admin.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	b.cleanup(t, func(admin sarama.ClusterAdmin) error { return deleteTopic(admin, name) })
	client, err := sarama.NewClient(b.Brokers, Sarama())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	Eventually(t, 20*time.Second, "topic "+name+" visible", func() bool {
		if err := client.RefreshMetadata(name); err != nil {
			return false
		}
		ps, err := client.Partitions(name)
		return err == nil && len(ps) == int(partitions)
	})
}

// Group returns name as a consumer group and, on the real Kafka, deletes
// the group when t ends. Call it before starting the processors that use the
// group, so that they have stopped (t.Cleanup runs last-in first-out) when
// the group is deleted.
func (b *Broker) Group(t testing.TB, name string) goka.Group {
	t.Helper()
	b.cleanup(t, func(admin sarama.ClusterAdmin) error { return deleteGroup(admin, name) })
	return goka.Group(name)
}

// cleanup registers del to run against the real Kafka when t ends; its
// failures are logged, never fail t.
func (b *Broker) cleanup(t testing.TB, del func(sarama.ClusterAdmin) error) {
	if b.Name != "kafka" {
		return
	}
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(b.Brokers, Sarama())
		if err != nil {
			t.Logf("cleanup: cluster admin: %v", err)
			return
		}
		defer admin.Close()
		if err := del(admin); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

// deleteTopic deletes topic; a topic already gone is not an error.
func deleteTopic(admin sarama.ClusterAdmin, topic string) error {
	if err := admin.DeleteTopic(topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
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

// Producer is a synchronous producer with the goka partitioner.
type Producer struct {
	p sarama.SyncProducer
}

// Producer returns a producer closed when t ends.
func (b *Broker) Producer(t testing.TB) *Producer {
	t.Helper()
	p, err := sarama.NewSyncProducer(b.Brokers, Sarama())
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return &Producer{p: p}
}

// Send produces one message and waits for its acknowledgement.
func (p *Producer) Send(t testing.TB, topic, key string, value []byte, headers map[string]string) {
	t.Helper()
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}
	for k, v := range headers {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
	}
	if _, _, err := p.p.SendMessage(msg); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// Record is one message read back from a topic.
type Record struct {
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

// ReadAll returns every message currently in topic, partition by partition
// in offset order.
func (b *Broker) ReadAll(t testing.TB, topic string) []Record {
	t.Helper()
	recs, err := readAll(b.Brokers, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return recs
}

func readAll(brokers []string, topic string) ([]Record, error) {
	client, err := sarama.NewClient(brokers, Sarama())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		low, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		if hwm <= low {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, low)
		if err != nil {
			return nil, err
		}
		timeout := time.NewTimer(10 * time.Second)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				r := Record{Partition: p, Offset: m.Offset, Key: string(m.Key), Value: m.Value, Headers: map[string]string{}}
				for _, h := range m.Headers {
					r.Headers[string(h.Key)] = string(h.Value)
				}
				out = append(out, r)
				done = m.Offset >= hwm-1
			case err := <-pc.Errors():
				pc.Close()
				return nil, err
			case <-timeout.C:
				pc.Close()
				return nil, fmt.Errorf("partition %d: timed out before offset %d", p, hwm-1)
			}
		}
		timeout.Stop()
		pc.Close()
	}
	return out, nil
}

// WaitRecords polls topic until ok holds for its messages and returns them.
func (b *Broker) WaitRecords(t testing.TB, topic string, what string, ok func([]Record) bool) []Record {
	t.Helper()
	var recs []Record
	var lastErr error
	Eventually(t, 30*time.Second, what, func() bool {
		recs, lastErr = readAll(b.Brokers, topic)
		return lastErr == nil && ok(recs)
	})
	return recs
}

// Eventually polls cond every 20ms until it holds or timeout passes, then
// fails t naming what it waited for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Runner is anything with the Run(ctx) error lifecycle.
type Runner interface {
	Run(ctx context.Context) error
}

// Start runs r in the background until t ends; when t ends it cancels r and
// fails t if Run returned an error other than a context error.
func Start(t testing.TB, r Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(90 * time.Second):
				result = errors.New("Run did not return within 90s of cancel")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// Logger returns a logger that writes to stderr at warning level and above,
// or at debug level when GRAINLINE_TEST_DEBUG is set.
func Logger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("GRAINLINE_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
