package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
)

// runRelay starts r.Run and returns a stop function that cancels it and
// checks that Run returned nil.
func runRelay(t *testing.T, r *kafka.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("relay Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("relay Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func fastRelay() kafka.RelayConfig {
	return kafka.RelayConfig{Batch: 37, PollInterval: 50 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond}
}

// checkPublished asserts the messages on topic: every event exactly once
// (at least once when dupOK), in the partition goka's hasher picks, with
// headers and envelope, and per aggregate in increasing revision order.
func checkPublished(t *testing.T, msgs []*sarama.ConsumerMessage, partitions int32, wantEvents int, dupOK bool) {
	t.Helper()
	seen := map[string]int{}
	byAgg := map[string][]*sarama.ConsumerMessage{}
	for _, m := range msgs {
		env, err := kafka.DecodeEnvelope(m.Value)
		if err != nil {
			t.Fatalf("offset %d: %v", m.Offset, err)
		}
		seen[env.EventID]++
		if string(m.Key) != env.AggregateID {
			t.Errorf("key %q, aggregate %q", m.Key, env.AggregateID)
		}
		if want := gokaPartition(string(m.Key), partitions); m.Partition != want {
			t.Errorf("key %s in partition %d, goka looks in %d", m.Key, m.Partition, want)
		}
		hdr := map[string]string{}
		for _, h := range m.Headers {
			hdr[string(h.Key)] = string(h.Value)
		}
		if hdr[kafka.HeaderTenant] != env.TenantID || hdr[kafka.HeaderEventType] != env.EventType || hdr[kafka.HeaderEventID] != env.EventID {
			t.Errorf("headers %v do not match envelope %+v", hdr, env)
		}
		if env.Revision < 1 || string(env.Payload) != fmt.Sprintf(`{"n":%d}`, env.Revision) || env.AggregateKind != "quote" || env.CorrelationID != "corr-1" {
			t.Errorf("envelope %+v", env)
		}
		byAgg[env.AggregateID] = append(byAgg[env.AggregateID], m)
	}
	if len(seen) != wantEvents {
		t.Fatalf("%d distinct events on the topic, want %d", len(seen), wantEvents)
	}
	for id, n := range seen {
		if n > 1 && !dupOK {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	for agg, ms := range byAgg {
		sort.Slice(ms, func(i, j int) bool { return ms[i].Offset < ms[j].Offset })
		// Consumers dedupe by event id, so the order that counts is the
		// order of first occurrences: it must be 1, 2, 3, ... per aggregate.
		var last int64
		first := map[string]bool{}
		for _, m := range ms {
			env, _ := kafka.DecodeEnvelope(m.Value)
			if first[env.EventID] {
				continue
			}
			first[env.EventID] = true
			if env.Revision != last+1 {
				t.Errorf("aggregate %s: revision %d first seen after %d", agg, env.Revision, last)
			}
			last = env.Revision
		}
	}
}

func addEvents(o *memOutbox, topic string, aggs, revs int, fromRev int) int {
	n := 0
	for rev := fromRev; rev < fromRev+revs; rev++ {
		for a := range aggs {
			o.add(event(topic, "acme", fmt.Sprintf("q-%02d", a), int64(rev), 0))
			n++
		}
	}
	return n
}

func TestRelayPublishesInOrderAndAcksAfterPublish(t *testing.T) {
	forEachBroker(t, func(t *testing.T, _ brokerKind, brokers []string) {
		const partitions = 3
		top, topic := streamTopology(partitions)
		applyTopology(t, brokers, top)

		out := newMemOutbox()
		total := addEvents(out, topic, 20, 10, 1)
		prod := &recordingProducer{SyncProducer: newProducer(t, brokers), sent: map[string]bool{}}
		out.check = func(seqs []int64) error {
			for _, s := range seqs {
				if id := out.recs[s-1].Event.EventID; !prod.wasSent(id) {
					t.Errorf("seq %d (%s) acked before Kafka acknowledged it", s, id)
				}
			}
			return nil
		}
		r, err := kafka.NewRelay(fastRelay(), out, prod, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		stop := runRelay(t, r)
		eventually(t, 60*time.Second, "every record acked", func() bool { return out.ackedCount() == total })
		stop()

		if got := out.ackOrder; !sort.SliceIsSorted(got, func(i, j int) bool { return got[i] < got[j] }) {
			t.Errorf("acks out of seq order: %v", got)
		}
		st := r.Stats()
		if st.Published != uint64(total) || st.Batches != uint64((total+36)/37) || st.Failures != 0 {
			t.Errorf("stats %+v, want %d published in %d batches", st, total, (total+36)/37)
		}
		msgs := readTopic(t, brokers, topic, total, 30*time.Second)
		checkPublished(t, msgs, partitions, total, false)
		if len(msgs) != total {
			t.Errorf("%d messages on the topic, want %d", len(msgs), total)
		}
	})
}

func TestRelayRetriesMissingTopicWithoutAcking(t *testing.T) {
	forEachBroker(t, func(t *testing.T, _ brokerKind, brokers []string) {
		const partitions = 4
		top, topic := streamTopology(partitions)
		out := newMemOutbox()
		total := addEvents(out, topic, 5, 4, 1)
		r, err := kafka.NewRelay(fastRelay(), out, newProducer(t, brokers), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		runRelay(t, r)
		eventually(t, 60*time.Second, "two failed publishes", func() bool { return r.Stats().Failures >= 2 })
		if n := out.ackedCount(); n != 0 {
			t.Fatalf("%d records acked while the topic does not exist", n)
		}
		if st := r.Stats(); st.LastError == "" || st.Published != 0 {
			t.Fatalf("stats %+v", st)
		}

		applyTopology(t, brokers, top)
		r.Notify()
		eventually(t, 60*time.Second, "every record acked after the topic appeared", func() bool { return out.ackedCount() == total })
		checkPublished(t, readTopic(t, brokers, topic, total, 30*time.Second), partitions, total, true)
	})
}

func TestRelayRetriesAckWithoutRepublishing(t *testing.T) {
	forEachBroker(t, func(t *testing.T, _ brokerKind, brokers []string) {
		top, topic := streamTopology(2)
		applyTopology(t, brokers, top)
		out := newMemOutbox()
		out.ackFails = 2
		total := addEvents(out, topic, 3, 3, 1)
		prod := &recordingProducer{SyncProducer: newProducer(t, brokers), sent: map[string]bool{}}
		r, err := kafka.NewRelay(fastRelay(), out, prod, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		stop := runRelay(t, r)
		eventually(t, 30*time.Second, "every record acked", func() bool { return out.ackedCount() == total })
		stop()
		prod.mu.Lock()
		calls := prod.calls
		prod.mu.Unlock()
		if calls != 3 { // three waves: each aggregate has three events
			t.Errorf("%d SendMessages calls, want 3: a failed ack must not republish", calls)
		}
		if st := r.Stats(); st.Failures != 2 || st.Published != uint64(total) {
			t.Errorf("stats %+v", st)
		}
		msgs := readTopic(t, brokers, topic, total, 30*time.Second)
		checkPublished(t, msgs, 2, total, false)
	})
}

// The embedded broker goes away mid-run and comes back on the same address
// and data directory: nothing is acked while it is down, everything arrives
// after, and what was published before survives the restart.
func TestRelaySurvivesEmbeddedBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	e1, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: dir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e1.Close()
	brokers := e1.Brokers()
	const partitions = 3
	top, topic := streamTopology(partitions)
	applyTopology(t, brokers, top)

	out := newMemOutbox()
	first := addEvents(out, topic, 4, 2, 1)
	r, err := kafka.NewRelay(fastRelay(), out, newProducer(t, brokers), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	eventually(t, 30*time.Second, "first records acked", func() bool { return out.ackedCount() == first })

	e1.Close()
	second := addEvents(out, topic, 4, 2, 3)
	r.Notify()
	eventually(t, 60*time.Second, "a failed publish while the broker is down", func() bool { return r.Stats().Failures >= 1 })
	if n := out.ackedCount(); n != first {
		t.Fatalf("%d records acked while the broker was down, want %d", n, first)
	}

	startEmbedded(t, kafka.EmbeddedConfig{Addr: brokers[0], DataDir: dir})
	eventually(t, 90*time.Second, "every record acked after the restart", func() bool { return out.ackedCount() == first+second })
	checkPublished(t, readTopic(t, brokers, topic, first+second, 30*time.Second), partitions, first+second, true)
}

// stubProducer counts batches and succeeds.
type stubProducer struct {
	sarama.SyncProducer
	calls atomic.Int64
}

func (p *stubProducer) SendMessages([]*sarama.ProducerMessage) error { p.calls.Add(1); return nil }

func TestRelayPublishesOnlyWhileHoldingTheLock(t *testing.T) {
	out := newMemOutbox()
	total := addEvents(out, "cpq.quote.events.v1", 2, 2, 1)
	var attempts atomic.Int64
	var granted, released atomic.Bool
	prod := &stubProducer{}
	cfg := fastRelay()
	cfg.LockRetry = 20 * time.Millisecond
	cfg.Lock = func(ctx context.Context) (func(), func(context.Context) error, bool, error) {
		switch n := attempts.Add(1); {
		case n == 2:
			return nil, nil, false, errors.New("lock store unreachable")
		case n < 4:
			if prod.calls.Load() != 0 {
				t.Errorf("published before holding the lock")
			}
			return nil, nil, false, nil
		}
		granted.Store(true)
		return func() { released.Store(true) }, nil, true, nil
	}
	r, err := kafka.NewRelay(cfg, out, prod, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runRelay(t, r)
	eventually(t, 10*time.Second, "records acked", func() bool { return out.ackedCount() == total })
	if !granted.Load() || attempts.Load() != 4 {
		t.Fatalf("lock attempts %d, granted %v", attempts.Load(), granted.Load())
	}
	if released.Load() {
		t.Fatalf("lock released while running")
	}
	stop()
	if !released.Load() {
		t.Fatalf("lock not released when Run returned")
	}
	if st := r.Stats(); st.Failures != 1 {
		t.Errorf("stats %+v, want the one lock failure", st)
	}
}

// fakeLock is a relay lock whose holder can be told it lost the lock.
type fakeLock struct {
	mu       sync.Mutex
	free     bool // Lock grants when free
	holder   int  // grants so far; the current holder's number
	lostBy   int  // holder number that lost the lock, 0 if none
	attempts int
	releases int
	checks   int
}

func (l *fakeLock) lock(context.Context) (func(), func(context.Context) error, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts++
	if !l.free {
		return nil, nil, false, nil
	}
	l.free = false
	l.holder++
	me := l.holder
	release := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.releases++
	}
	held := func(context.Context) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.checks++
		if l.lostBy == me {
			return errors.New("session terminated")
		}
		return nil
	}
	return release, held, true, nil
}

func (l *fakeLock) do(f func(l *fakeLock)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func (l *fakeLock) get(f func(l *fakeLock) int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return f(l)
}

// A relay that learns before a publish round that its lock is gone publishes
// nothing more, releases the lock, stands by, and publishes again once it
// holds the lock anew.
func TestRelayStopsPublishingWhenTheLockIsLost(t *testing.T) {
	out := newMemOutbox()
	first := addEvents(out, "cpq.quote.events.v1", 3, 2, 1)
	prod := &stubProducer{}
	lk := &fakeLock{free: true}
	cfg := fastRelay()
	cfg.LockRetry = 30 * time.Millisecond
	cfg.Lock = lk.lock
	r, err := kafka.NewRelay(cfg, out, prod, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	eventually(t, 10*time.Second, "first records acked", func() bool { return out.ackedCount() == first })
	if !r.Stats().Leader {
		t.Fatalf("relay publishing but Stats.Leader is false")
	}
	if lk.get(func(l *fakeLock) int { return l.checks }) == 0 {
		t.Fatalf("published without checking the lock")
	}
	// Another relay takes over: ours loses the lock and the lock is taken.
	lk.do(func(l *fakeLock) { l.lostBy = 1 })
	calls := prod.calls.Load()
	second := addEvents(out, "cpq.quote.events.v1", 3, 2, 3)
	r.Notify()
	eventually(t, 10*time.Second, "lost lock noticed and released", func() bool {
		return r.Stats().LeaderLost == 1 && lk.get(func(l *fakeLock) int { return l.releases }) == 1
	})
	if st := r.Stats(); st.Leader {
		t.Errorf("Stats.Leader true after the lock was lost")
	}
	// Standing by: several lock attempts, no publishing.
	before := lk.get(func(l *fakeLock) int { return l.attempts })
	eventually(t, 10*time.Second, "standby lock attempts", func() bool {
		return lk.get(func(l *fakeLock) int { return l.attempts }) >= before+2
	})
	if n := prod.calls.Load(); n != calls {
		t.Fatalf("%d publish calls after the lock was lost", n-calls)
	}
	if n := out.ackedCount(); n != first {
		t.Fatalf("%d records acked after the lock was lost, want %d", n, first)
	}
	// The lock is free again: the relay leads and publishes the rest.
	lk.do(func(l *fakeLock) { l.free = true })
	eventually(t, 10*time.Second, "remaining records acked", func() bool { return out.ackedCount() == first+second })
	if !r.Stats().Leader || lk.get(func(l *fakeLock) int { return l.holder }) != 2 {
		t.Fatalf("relay did not lead again: stats %+v", r.Stats())
	}
}

// A standby tries the lock every LockRetry, not on every Notify or poll.
func TestRelayStandbyTriesTheLockEveryLockRetry(t *testing.T) {
	lk := &fakeLock{}
	cfg := fastRelay()
	cfg.PollInterval = time.Millisecond
	cfg.LockRetry = 100 * time.Millisecond
	cfg.Lock = lk.lock
	r, err := kafka.NewRelay(cfg, newMemOutbox(), &stubProducer{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runRelay(t, r)
	start := time.Now()
	for time.Since(start) < 450*time.Millisecond {
		r.Notify()
		time.Sleep(time.Millisecond)
	}
	stop()
	// 450ms at one try per 100ms: 5 tries, 6 at most with the first.
	if n := lk.get(func(l *fakeLock) int { return l.attempts }); n < 1 || n > 6 {
		t.Fatalf("%d lock attempts in 450ms with LockRetry 100ms", n)
	}
	if r.Stats().Leader {
		t.Fatalf("standby reports itself leader")
	}
}

func TestRelayNotifyNeverBlocks(t *testing.T) {
	r, err := kafka.NewRelay(kafka.RelayConfig{}, newMemOutbox(), &stubProducer{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 1000 {
					r.Notify()
				}
			}()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify blocked without a running relay")
	}
}

func TestRelayConfigValidate(t *testing.T) {
	for _, tc := range []kafka.RelayConfig{
		{Batch: -1},
		{BackoffMin: time.Second, BackoffMax: time.Millisecond},
		{PollInterval: -time.Second},
		{LockRetry: -time.Second},
		{LockCheckTimeout: -time.Second},
	} {
		if _, err := kafka.NewRelay(tc, newMemOutbox(), &stubProducer{}, nil); !errors.Is(err, kafka.ErrConfig) {
			t.Errorf("NewRelay(%+v) = %v, want ErrConfig", tc, err)
		}
	}
	if _, err := kafka.NewRelay(kafka.RelayConfig{}, nil, &stubProducer{}, nil); !errors.Is(err, kafka.ErrConfig) {
		t.Errorf("nil outbox accepted: %v", err)
	}
}

func TestWavesKeepEachAggregatesEventsInSeparateCalls(t *testing.T) {
	out := newMemOutbox()
	out.add(event("cpq.quote.events.v1", "acme", "q-1", 1, 0))
	out.add(event("cpq.quote.events.v1", "acme", "q-1", 1, 1))
	out.add(event("cpq.quote.events.v1", "acme", "q-2", 1, 0))
	out.add(event("cpq.quote.events.v1", "other", "q-1", 1, 0)) // another tenant's q-1
	out.add(event("cpq.quote.events.v1", "acme", "q-1", 2, 0))
	recs, _ := out.PendingOutbox(context.Background(), 10)
	waves, err := kafka.Waves(recs)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(w []*sarama.ProducerMessage) (s []string) {
		for _, m := range w {
			for _, h := range m.Headers {
				if string(h.Key) == kafka.HeaderEventID {
					s = append(s, string(h.Value))
				}
			}
		}
		return s
	}
	want := [][]string{
		{"acme/quote/q-1/1/0", "acme/quote/q-2/1/0", "other/quote/q-1/1/0"},
		{"acme/quote/q-1/1/1"},
		{"acme/quote/q-1/2/0"},
	}
	if len(waves) != len(want) {
		t.Fatalf("%d waves, want %d", len(waves), len(want))
	}
	for i := range want {
		if got := ids(waves[i]); !slices.Equal(got, want[i]) {
			t.Errorf("wave %d = %v, want %v", i, got, want[i])
		}
	}
	bad := event("", "acme", "q-1", 1, 0)
	if _, err := kafka.Waves([]truth.OutboxRecord{{Seq: 1, Event: bad}}); err == nil {
		t.Errorf("event without topic accepted")
	}
}
