package kafka

import (
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// DefaultVersion is the Kafka protocol version spoken by default: the broker
// version of production (Apache Kafka 3.9), which the in-process broker of
// `grainline dev` also accepts. Both are exercised by this package's tests.
var DefaultVersion = sarama.V3_9_0_0

// Config is the client configuration shared by every Kafka producer and
// consumer of Grainline, sarama and goka alike.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// Version is the Kafka protocol version. Default DefaultVersion (3.9).
	Version sarama.KafkaVersion
	// ClientID names this process towards the brokers. Default "grainline".
	ClientID string
	// RetryMax is how often the producer retries a failed send before
	// reporting the error. Default 10; at least 5.
	RetryMax int
	// RetryBackoff is the base wait between producer retries; it doubles per
	// attempt, capped at 2s. Default 100ms.
	RetryBackoff time.Duration
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration
	// Log receives the log lines of the goka processors, views and
	// emitters built with this configuration's options, at level Info with
	// component "goka". Nil leaves them on goka's default logger (the
	// standard library's, on stderr, whatever the process's log level).
	Log *slog.Logger
}

// ErrConfig reports an invalid Kafka configuration.
var ErrConfig = errors.New("kafka: invalid config")

// WithDefaults returns c with every zero field set to its documented default.
func (c Config) WithDefaults() Config {
	if c.Version == (sarama.KafkaVersion{}) {
		c.Version = DefaultVersion
	}
	if c.ClientID == "" {
		c.ClientID = "grainline"
	}
	if c.RetryMax == 0 {
		c.RetryMax = 10
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	return c
}

// Validate checks c after defaults: brokers are given, the version is at
// least 2.1 (newer brokers reject older protocol versions), retries are at
// least 5 and durations positive.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	for _, b := range c.Brokers {
		if b == "" {
			return fmt.Errorf("%w: empty broker address", ErrConfig)
		}
	}
	if !c.Version.IsAtLeast(sarama.V2_1_0_0) {
		return fmt.Errorf("%w: version %s is older than 2.1", ErrConfig, c.Version)
	}
	if c.RetryMax < 5 {
		return fmt.Errorf("%w: retry max %d is below 5", ErrConfig, c.RetryMax)
	}
	if c.RetryBackoff < 0 || c.DialTimeout < 0 {
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	return nil
}

// Sarama returns a fresh sarama configuration (callers may modify it):
// idempotent producer with acks=all and one open request per broker, retries
// with capped exponential backoff, successes returned (for SyncProducer),
// goka's FNV-32a hash partitioner, no topic auto-creation, consumers starting at the oldest offset and
// a sticky rebalance strategy for consumer groups.
func (c Config) Sarama() *sarama.Config {
	c = c.WithDefaults()
	s := sarama.NewConfig()
	s.Version = c.Version
	s.ClientID = c.ClientID
	s.Net.DialTimeout = c.DialTimeout
	s.Net.MaxOpenRequests = 1

	s.Producer.RequiredAcks = sarama.WaitForAll
	s.Producer.Idempotent = true
	s.Producer.Retry.Max = c.RetryMax
	base := c.RetryBackoff
	s.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return capped(base, retries, 2*time.Second)
	}
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true
	s.Producer.Partitioner = sarama.NewCustomHashPartitioner(goka.DefaultHasher())
	s.Producer.Compression = sarama.CompressionNone

	// Topics are provisioned from topology.yaml: a client never creates one
	// by asking for its metadata, whatever the broker's auto-create setting.
	s.Metadata.AllowAutoTopicCreation = false
	s.Metadata.Retry.Max = c.RetryMax
	s.Metadata.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return capped(base, retries, 2*time.Second)
	}

	s.Consumer.Return.Errors = true
	s.Consumer.Offsets.Initial = sarama.OffsetOldest
	s.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{
		sarama.NewBalanceStrategySticky(),
		sarama.NewBalanceStrategyRange(),
	}
	return s
}

func capped(base time.Duration, attempt int, max time.Duration) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// gokaSarama is the sarama configuration goka processors use: Sarama() with
// goka's copartitioning strategy, which a processor with several inputs or a
// table needs so that partition i of every input lands on one member.
func (c Config) gokaSarama() *sarama.Config {
	s := c.Sarama()
	s.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{goka.CopartitioningStrategy}
	return s
}

// TopicManagerConfig is the goka topic-manager configuration of Grainline:
// topics are provisioned from topology.yaml, so goka never creates one
// (NoCreate) and a missing topic fails the processor at start. Mismatches of
// retention or replication are ignored here, because goka compares them with
// its own defaults rather than with topology.yaml; `grainline topology diff`
// (Diff) is the check for drift.
func TopicManagerConfig() *goka.TopicManagerConfig {
	tm := goka.NewTopicManagerConfig()
	tm.NoCreate = true
	tm.Table.Replication = 1
	tm.Stream.Replication = 1
	tm.MismatchBehavior = goka.TMConfigMismatchBehaviorIgnore
	return tm
}

// Each builder below builds a fresh sarama config per call: goka's own
// *WithConfig builders write ClientID and the partitioner into the config
// they are given, which would race when several processors share one.

func (c Config) producerBuilder() goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		return goka.ProducerBuilderWithConfig(c.gokaSarama())(brokers, clientID, hasher)
	}
}

func (c Config) topicManagerBuilder() goka.TopicManagerBuilder {
	return func(brokers []string) (goka.TopicManager, error) {
		return goka.TopicManagerBuilderWithConfig(c.gokaSarama(), TopicManagerConfig())(brokers)
	}
}

func (c Config) consumerGroupBuilder() goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		return goka.ConsumerGroupBuilderWithConfig(c.gokaSarama())(brokers, group, clientID)
	}
}

func (c Config) saramaConsumerBuilder() goka.SaramaConsumerBuilder {
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		return goka.SaramaConsumerBuilderWithConfig(c.gokaSarama())(brokers, clientID)
	}
}

// GokaOptions installs this configuration in one goka processor: producer,
// consumer group, table consumer and a topic manager that never creates
// topics, all with the FNV-32a hasher. No global goka state is touched.
func (c Config) GokaOptions() []goka.ProcessorOption {
	opts := []goka.ProcessorOption{
		goka.WithProducerBuilder(c.producerBuilder()),
		goka.WithConsumerGroupBuilder(c.consumerGroupBuilder()),
		goka.WithConsumerSaramaBuilder(c.saramaConsumerBuilder()),
		goka.WithTopicManagerBuilder(c.topicManagerBuilder()),
		goka.WithHasher(goka.DefaultHasher()),
		goka.WithClientID(c.WithDefaults().ClientID),
	}
	if l, ok := c.gokaLog(); ok {
		opts = append(opts, goka.WithLogger(l))
	}
	return opts
}

// GokaViewOptions installs this configuration in one goka view.
func (c Config) GokaViewOptions() []goka.ViewOption {
	opts := []goka.ViewOption{
		goka.WithViewConsumerSaramaBuilder(c.saramaConsumerBuilder()),
		goka.WithViewTopicManagerBuilder(c.topicManagerBuilder()),
		goka.WithViewHasher(goka.DefaultHasher()),
		goka.WithViewClientID(c.WithDefaults().ClientID),
	}
	if l, ok := c.gokaLog(); ok {
		opts = append(opts, goka.WithViewLogger(l))
	}
	return opts
}

// GokaEmitterOptions installs this configuration in one goka emitter.
func (c Config) GokaEmitterOptions() []goka.EmitterOption {
	opts := []goka.EmitterOption{
		goka.WithEmitterProducerBuilder(c.producerBuilder()),
		goka.WithEmitterTopicManagerBuilder(c.topicManagerBuilder()),
		goka.WithEmitterHasher(goka.DefaultHasher()),
		goka.WithEmitterClientID(c.WithDefaults().ClientID),
	}
	if l, ok := c.gokaLog(); ok {
		opts = append(opts, goka.WithEmitterLogger(l))
	}
	return opts
}
