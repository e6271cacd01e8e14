package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/connectors/truth/truthtest"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
)

// phasedProducer records the event ids each SendMessages call published,
// split by the phase the test was in when the call started.
type phasedProducer struct {
	sarama.SyncProducer
	phase atomic.Int32
	mu    sync.Mutex
	sent  map[int32][]string
}

func (p *phasedProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	phase := p.phase.Load()
	err := p.SyncProducer.SendMessages(msgs)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		for _, h := range m.Headers {
			if string(h.Key) == kafka.HeaderEventID {
				p.sent[phase] = append(p.sent[phase], string(h.Value))
			}
		}
	}
	return err
}

func (p *phasedProducer) sentIn(phase int32) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sent[phase]...)
}

const (
	phaseLeading    int32 = iota // the relay holds the lock
	phaseTerminated              // its lock session was terminated
	phaseLost                    // the relay reported the lock lost
)

// Two relays share one PostgreSQL outbox. The leader's lock session is
// terminated while events keep being committed: the old leader publishes at
// most the round in flight and then nothing, the standby takes over, and
// every committed event reaches Kafka.
func TestRelayFailsOverWhenTheLeadersLockSessionEnds(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDB(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	openStore := func() *postgres.Store {
		s, err := postgres.Open(ctx, postgres.Config{DSN: dsn}, nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	storeA, storeB := openStore(), openStore()

	brokers := testenv.Kafka(t)
	top, topic := streamTopology(4)
	applyTopology(t, brokers, top)

	const batch = 10
	newRelay := func(s *postgres.Store, retry time.Duration) (*kafka.Relay, *phasedProducer) {
		prod := &phasedProducer{SyncProducer: newProducer(t, brokers), sent: map[int32][]string{}}
		r, err := kafka.NewRelay(kafka.RelayConfig{
			Batch: batch, PollInterval: 20 * time.Millisecond,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			LockRetry: retry, LockCheckTimeout: time.Second, Lock: s.TryRelayLock,
		}, s, prod, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return r, prod
	}
	// The old leader retries slowly so that the standby, not it, takes over.
	relayA, prodA := newRelay(storeA, 5*time.Second)
	relayB, prodB := newRelay(storeB, 50*time.Millisecond)

	// Commit events continuously, across the failover.
	var committed sync.Map // event id -> true
	var commits atomic.Int64
	wctx, stopWriting := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- func() error {
			revs := map[string]int64{}
			for i := 0; wctx.Err() == nil; i++ {
				k := truth.Key{Tenant: "acme", Kind: "quote", ID: fmt.Sprintf("q-%d", i%5)}
				c := truthtest.NewCommit(k, revs[k.ID], "")
				for j := range c.Events {
					c.Events[j].Topic = topic
				}
				res, err := storeA.Commit(ctx, []truth.Commit{c})
				if err != nil {
					return err
				}
				if res[0] != nil {
					return res[0]
				}
				revs[k.ID]++
				for _, ev := range c.Events {
					committed.Store(ev.EventID, true)
				}
				commits.Add(1)
				time.Sleep(5 * time.Millisecond) // pace the load, not a wait for a condition
			}
			return nil
		}()
	}()
	defer stopWriting()

	runRelay(t, relayA)
	eventually(t, 10*time.Second, "relay A leads", func() bool { return relayA.Stats().Leader })
	runRelay(t, relayB)
	eventually(t, 10*time.Second, "relay A publishes", func() bool { return relayA.Stats().Published >= 40 })
	if relayB.Stats().Leader || len(prodB.sentIn(phaseLeading)) != 0 {
		t.Fatalf("standby published while the leader held the lock")
	}

	// Terminate the session that holds the relay lock.
	var pids []int32
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if rows.Close(); rows.Err() != nil || len(pids) != 1 {
		t.Fatalf("advisory lock holders %v (err %v), want one", pids, rows.Err())
	}
	prodA.phase.Store(phaseTerminated)
	var killed bool
	if err := pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pids[0]).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate lock session %d: %v %v", pids[0], killed, err)
	}

	eventually(t, 15*time.Second, "relay A notices the lost lock", func() bool { return relayA.Stats().LeaderLost == 1 })
	prodA.phase.Store(phaseLost)
	eventually(t, 15*time.Second, "relay B takes over", func() bool { return relayB.Stats().Leader })
	atTakeover := relayB.Stats().Published
	eventually(t, 15*time.Second, "relay B publishes", func() bool { return relayB.Stats().Published >= atTakeover+40 })
	stopWriting()
	if err := <-writerDone; err != nil {
		t.Fatalf("commit: %v", err)
	}
	eventually(t, 30*time.Second, "outbox drained", func() bool {
		recs, err := storeB.PendingOutbox(ctx, 1)
		return err == nil && len(recs) == 0
	})

	if st := relayA.Stats(); st.Leader || st.LeaderLost != 1 {
		t.Errorf("old leader stats %+v, want a standby that lost the lock once", st)
	}
	if n := len(prodA.sentIn(phaseTerminated)); n > batch {
		t.Errorf("old leader published %d events after its session ended, more than the round in flight (%d)", n, batch)
	}
	if ids := prodA.sentIn(phaseLost); len(ids) != 0 {
		t.Errorf("old leader published %d events after it reported the lock lost", len(ids))
	}

	var want int
	committed.Range(func(any, any) bool { want++; return true })
	msgs := readTopic(t, brokers, topic, want, 30*time.Second)
	// Everything published is on the broker by now (the outbox is drained
	// and acks follow Kafka's acks); read up to the high-water marks.
	msgs = readTopic(t, brokers, topic, int(topicSize(t, brokers, topic)), 30*time.Second)
	seen := map[string]int{}
	for _, m := range msgs {
		env, err := kafka.DecodeEnvelope(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		seen[env.EventID]++
	}
	dups := 0
	for id, n := range seen {
		if _, ok := committed.Load(id); !ok {
			t.Errorf("event %s published but never committed", id)
		}
		dups += n - 1
	}
	committed.Range(func(id, _ any) bool {
		if seen[id.(string)] == 0 {
			t.Errorf("committed event %s never published", id)
		}
		return true
	})
	if dups > batch {
		t.Errorf("%d duplicate publications, more than one round (%d)", dups, batch)
	}
	t.Logf("%d commits, %d events, %d duplicates, old leader sent %d after termination",
		commits.Load(), want, dups, len(prodA.sentIn(phaseTerminated)))
}

// topicSize is the sum of topic's partitions' high-water marks.
func topicSize(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	c, err := sarama.NewClient(brokers, clientConfig(brokers).Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		off, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		n += off
	}
	return n
}
