package kafka_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
)

func TestConfigValidate(t *testing.T) {
	if err := (kafka.Config{Brokers: []string{"127.0.0.1:9092"}}).Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for name, c := range map[string]kafka.Config{
		"no brokers":   {},
		"empty broker": {Brokers: []string{""}},
		"old version":  {Brokers: []string{"b:9092"}, Version: sarama.V2_0_0_0},
		"few retries":  {Brokers: []string{"b:9092"}, RetryMax: 2},
		"neg backoff":  {Brokers: []string{"b:9092"}, RetryBackoff: -time.Second},
	} {
		if err := c.Validate(); !errors.Is(err, kafka.ErrConfig) {
			t.Errorf("%s: Validate() = %v, want ErrConfig", name, err)
		}
	}
}

func TestSaramaConfig(t *testing.T) {
	s := kafka.Config{Brokers: []string{"b:9092"}}.Sarama()
	if err := s.Validate(); err != nil {
		t.Fatalf("sarama rejects the config: %v", err)
	}
	switch {
	case s.Version != kafka.DefaultVersion:
		t.Errorf("version %s", s.Version)
	case s.Producer.RequiredAcks != sarama.WaitForAll || !s.Producer.Idempotent || s.Net.MaxOpenRequests != 1:
		t.Errorf("producer is not idempotent with acks=all: %+v", s.Producer)
	case s.Producer.Retry.Max < 5 || s.Producer.Retry.BackoffFunc == nil:
		t.Errorf("producer retries %d", s.Producer.Retry.Max)
	case !s.Producer.Return.Successes:
		t.Errorf("successes not returned")
	case s.Consumer.Offsets.Initial != sarama.OffsetOldest:
		t.Errorf("initial offset %d", s.Consumer.Offsets.Initial)
	case len(s.Consumer.Group.Rebalance.GroupStrategies) == 0:
		t.Errorf("no group strategies")
	case s.Metadata.AllowAutoTopicCreation:
		t.Errorf("clients may auto-create topics")
	}
	if b := s.Producer.Retry.BackoffFunc(20, 10); b > 2*time.Second {
		t.Errorf("retry backoff %s not capped", b)
	}

	// The partitioner puts every key where goka looks for it.
	part := s.Producer.Partitioner("cpq.quote.events.v1")
	for _, n := range []int32{1, 3, 6, 10, 32} {
		for i := range 2000 {
			key := fmt.Sprintf("acme/q-%d", i)
			got, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := gokaPartition(key, n); got != want {
				t.Fatalf("key %s over %d partitions: producer %d, goka %d", key, n, got, want)
			}
		}
	}

	// Each call returns a fresh config: goka's builders write into it.
	if (kafka.Config{Brokers: []string{"b:9092"}}).Sarama() == s {
		t.Errorf("Sarama() shares its result")
	}
}

// The default protocol version works against both brokers; so does the
// exact 3.9 patch constant.
func TestVersionAgainstBrokers(t *testing.T) {
	forEachBroker(t, func(t *testing.T, _ brokerKind, brokers []string) {
		for _, v := range []sarama.KafkaVersion{kafka.DefaultVersion, sarama.V3_9_2_0} {
			cfg := clientConfig(brokers)
			cfg.Version = v
			admin, err := sarama.NewClusterAdmin(brokers, cfg.Sarama())
			if err != nil {
				t.Fatalf("version %s: %v", v, err)
			}
			if _, err := admin.ListTopics(); err != nil {
				t.Errorf("version %s: list topics: %v", v, err)
			}
			admin.Close()
		}
	})
}
