package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedConfig configures the in-process Kafka-protocol broker of
// `grainline dev` and of tests.
type EmbeddedConfig struct {
	// Addr is the listen address. Default "127.0.0.1:0" (a free port, which
	// changes on every start: ask Brokers()).
	Addr string
	// DataDir, when set, makes the broker durable: topics, records and
	// committed consumer-group offsets are written under it and reloaded by
	// the next StartEmbedded on the same directory. Empty means in memory.
	DataDir string
	// SyncWrites fsyncs every produced batch (slower; survives a machine
	// crash, not only a process restart). Default false: the page cache, like
	// Kafka's default flush policy.
	SyncWrites bool
	// Partitions is the partition count of auto-created topics. Default 6.
	// Topics are normally created from topology.yaml with Apply.
	Partitions int
}

// Validate checks the address parses.
func (c EmbeddedConfig) Validate() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: embedded broker addr %q: %v", ErrConfig, c.Addr, err)
	}
	if c.Partitions < 0 {
		return fmt.Errorf("%w: embedded broker partitions %d", ErrConfig, c.Partitions)
	}
	return nil
}

// Embedded is a single-node Kafka-protocol broker running in this process
// (franz-go's kfake). It has no replication: every topic has replication 1.
type Embedded struct {
	cluster *kfake.Cluster
	log     *slog.Logger
	once    sync.Once
}

// StartEmbedded starts the broker and returns once it accepts connections.
func StartEmbedded(cfg EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 6
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := cfg.Addr
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("grainline-dev"),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, addr)
		}),
		kfake.WithLogger(kfakeLogger{log}),
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("kafka: embedded broker data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded broker: %w", err)
	}
	e := &Embedded{cluster: c, log: log}
	log.Info("embedded kafka broker started", "brokers", c.ListenAddrs(), "data_dir", cfg.DataDir)
	return e, nil
}

// Brokers returns the broker's bootstrap address.
func (e *Embedded) Brokers() []string { return e.cluster.ListenAddrs() }

// Close stops the broker, writing its state to DataDir when one is set. It
// is safe to call more than once.
func (e *Embedded) Close() {
	e.once.Do(func() {
		e.cluster.Close()
		e.log.Info("embedded kafka broker stopped")
	})
}

// kfakeLogger forwards kfake's warnings and errors to slog.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		return
	}
	l.log.Log(context.Background(), lv, "kfake: "+fmt.Sprintf(msg, args...))
}
