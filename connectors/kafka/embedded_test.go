package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/grainline/grainline/connectors/kafka"
)

// countingHandler marks and commits every message it sees.
type countingHandler struct {
	n    atomic.Int64
	keys sync.Map
}

func (*countingHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*countingHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *countingHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-s.Context().Done():
			return nil
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			h.keys.Store(string(m.Value), true)
			s.MarkMessage(m, "")
			s.Commit()
			h.n.Add(1)
		}
	}
}

// consumeGroup runs a consumer group until handler has seen want messages.
func consumeGroup(t *testing.T, brokers []string, group, topic string, want int64) *countingHandler {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(brokers, group, clientConfig(brokers).Sarama())
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	h := &countingHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				t.Logf("consume: %v", err)
			}
		}
	}()
	eventually(t, 60*time.Second, fmt.Sprintf("group %s to see %d messages", group, want), func() bool { return h.n.Load() >= want })
	cancel()
	<-done
	if err := cg.Close(); err != nil {
		t.Errorf("close group: %v", err)
	}
	return h
}

func produce(t *testing.T, brokers []string, topic string, from, to int) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, clientConfig(brokers).Sarama())
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	for i := from; i < to; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))}); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}
}

// `grainline dev` restarts on the same data directory: topics, records and
// committed consumer-group offsets survive.
func TestEmbeddedBrokerPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	top, topic := streamTopology(2)
	group := "g-" + topic

	e1, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: dir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	applyTopologyKept(t, e1.Brokers(), top) // e1 is gone, and its data with t.TempDir, when t ends
	produce(t, e1.Brokers(), topic, 0, 10)
	consumeGroup(t, e1.Brokers(), group, topic, 10)
	e1.Close()

	e2 := startEmbedded(t, kafka.EmbeddedConfig{DataDir: dir})
	brokers := e2.Brokers()
	admin := newAdmin(t, brokers)
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 2 {
		t.Fatalf("after restart topic %s: %+v (present %v)", topic, d, ok)
	}
	msgs := readTopic(t, brokers, topic, 10, 30*time.Second)
	if len(msgs) != 10 {
		t.Fatalf("after restart %d records, want 10", len(msgs))
	}
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for p, b := range offs.Blocks[topic] {
		if b.Err != sarama.ErrNoError || b.Offset < 0 {
			t.Fatalf("partition %d: committed offset %d, %v", p, b.Offset, b.Err)
		}
		committed += b.Offset
	}
	if committed != 10 {
		t.Fatalf("committed offsets sum to %d after restart, want 10", committed)
	}

	// The group resumes where it stopped: it sees only the new records.
	produce(t, brokers, topic, 10, 13)
	h := consumeGroup(t, brokers, group, topic, 3)
	if n := h.n.Load(); n != 3 {
		t.Fatalf("group re-read %d records after restart, want only the 3 new ones", n)
	}
	h.keys.Range(func(k, _ any) bool {
		if k == "v0" {
			t.Errorf("group re-read %v", k)
		}
		return true
	})
}

func TestEmbeddedConfigValidate(t *testing.T) {
	if _, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "no-port"}, nil); !errors.Is(err, kafka.ErrConfig) {
		t.Fatalf("bad addr accepted: %v", err)
	}
}

// A goka processor with a table and a view work against both brokers with
// the shared configuration: what the relay's producer (FNV-32a) and a goka
// emitter write is counted in the table and found by the view.
func TestGokaProcessorAndView(t *testing.T) {
	forEachBroker(t, func(t *testing.T, _ brokerKind, brokers []string) {
		top := suffixedTopology()
		applyTopology(t, brokers, top)
		stream := goka.Stream(top.Topics[0].Name)
		group := goka.Group(top.Groups[0].Name)
		if string(goka.GroupTable(group)) != top.Groups[0].Table {
			t.Fatalf("goka names the table %s, topology %s", goka.GroupTable(group), top.Groups[0].Table)
		}
		cfg := clientConfig(brokers)
		logs := newCaptureHandler()
		cfg.Log = slog.New(logs)

		g := goka.DefineGroup(group,
			goka.Input(stream, new(codec.String), func(ctx goka.Context, _ any) {
				var n int64
				if v := ctx.Value(); v != nil {
					n = v.(int64)
				}
				ctx.SetValue(n + 1)
			}),
			goka.Persist(new(codec.Int64)),
		)
		popts := append(cfg.GokaOptions(), goka.WithStorageBuilder(storage.MemoryBuilder()))
		proc, err := goka.NewProcessor(brokers, g, popts...)
		if err != nil {
			t.Fatalf("processor: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		wg.Add(2)
		procErr := make(chan error, 1)
		go func() { defer wg.Done(); procErr <- proc.Run(ctx) }()
		defer wg.Wait()
		defer cancel()

		// Keys through the relay's producer config, and through an emitter.
		p := newProducer(t, brokers)
		for i := range 12 {
			key := fmt.Sprintf("quote-%d", i%4)
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: string(stream), Key: sarama.StringEncoder(key), Value: sarama.StringEncoder("x")}); err != nil {
				t.Fatal(err)
			}
		}
		em, err := goka.NewEmitter(brokers, stream, new(codec.String), cfg.GokaEmitterOptions()...)
		if err != nil {
			t.Fatalf("emitter: %v", err)
		}
		for range 2 {
			if err := em.EmitSync("quote-emitted", "y"); err != nil {
				t.Fatalf("emit: %v", err)
			}
		}
		if err := em.Finish(); err != nil {
			t.Fatal(err)
		}

		vopts := append(cfg.GokaViewOptions(), goka.WithViewStorageBuilder(storage.MemoryBuilder()))
		view, err := goka.NewView(brokers, goka.GroupTable(group), new(codec.Int64), vopts...)
		if err != nil {
			t.Fatalf("view: %v", err)
		}
		viewErr := make(chan error, 1)
		go func() { defer wg.Done(); viewErr <- view.Run(ctx) }()

		want := map[string]int64{"quote-0": 3, "quote-1": 3, "quote-2": 3, "quote-3": 3, "quote-emitted": 2}
		eventually(t, 90*time.Second, "the view to count every key", func() bool {
			select {
			case err := <-procErr:
				t.Fatalf("processor stopped: %v", err)
			case err := <-viewErr:
				t.Fatalf("view stopped: %v", err)
			default:
			}
			for k, n := range want {
				v, err := view.Get(k)
				if err != nil || v == nil || v.(int64) != n {
					return false
				}
			}
			return true
		})
		// Goka logged through cfg.Log, not the standard library's logger.
		if n := logs.count("component", "goka"); n == 0 {
			t.Fatal("no goka log line reached cfg.Log")
		}
	})
}

// captureHandler is a slog.Handler that keeps the attributes of every
// record handled by it or by the handlers derived from it.
type captureHandler struct {
	log   *capturedLog
	attrs []slog.Attr // of WithAttrs
}

type capturedLog struct {
	mu      sync.Mutex
	records [][]slog.Attr
}

func newCaptureHandler() *captureHandler { return &captureHandler{log: &capturedLog{}} }

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	h.log.records = append(h.log.records, attrs)
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{h.log, append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// count returns the records with attribute key=value.
func (h *captureHandler) count(key, value string) int {
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	n := 0
	for _, rec := range h.log.records {
		for _, a := range rec {
			if a.Key == key && a.Value.String() == value {
				n++
				break
			}
		}
	}
	return n
}
