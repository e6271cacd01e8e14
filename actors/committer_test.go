package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// gateWriter records batches; each write waits until the test opens the gate,
// so commits pile up behind an in-flight write as they do behind an fsync.
type gateWriter struct {
	mu      sync.Mutex
	batches [][]truth.Commit
	gate    chan struct{} // one receive per write; nil = no wait
	started chan struct{} // signalled when a write begins
	fail    func(c truth.Commit) error
	err     error
}

func (w *gateWriter) Commit(ctx context.Context, batch []truth.Commit) ([]error, error) {
	if w.started != nil {
		w.started <- struct{}{}
	}
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	w.batches = append(w.batches, append([]truth.Commit(nil), batch...))
	res := make([]error, len(batch))
	for i, c := range batch {
		if w.fail != nil {
			res[i] = w.fail(c)
		}
	}
	return res, nil
}

func (w *gateWriter) sizes() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []int
	for _, b := range w.batches {
		s = append(s, len(b))
	}
	return s
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startCommitter(t *testing.T, cfg CommitterConfig, w BatchWriter) *Committer {
	t.Helper()
	c, err := NewCommitter(cfg, w, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("committer run: %v", err)
		}
	})
	return c
}

func commitFor(id string) truth.Commit {
	return truth.Commit{Snapshot: truth.Snapshot{Key: truth.Key{Tenant: "t", Kind: "quote", ID: id}, Revision: 1}}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCommitterGathersCommitsQueuedBehindAWrite(t *testing.T) {
	w := &gateWriter{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	c := startCommitter(t, CommitterConfig{MaxBatch: 64}, w)

	var wg sync.WaitGroup
	results := make([]error, 21)
	commit := func(i int) {
		defer wg.Done()
		results[i] = c.Commit(context.Background(), commitFor(string(rune('a'+i))))
	}
	wg.Add(1)
	go commit(0)
	<-w.started // the first write is in flight
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go commit(i)
	}
	waitFor(t, "20 queued commits", func() bool { return len(c.queue) == 20 })
	w.gate <- struct{}{} // finish write 1
	<-w.started
	w.gate <- struct{}{} // finish write 2
	wg.Wait()

	if got := w.sizes(); len(got) != 2 || got[0] != 1 || got[1] != 20 {
		t.Fatalf("batch sizes = %v, want [1 20]", got)
	}
	for i, err := range results {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if b, n := c.Stats(); b != 2 || n != 21 {
		t.Errorf("stats = %d batches, %d commits; want 2, 21", b, n)
	}
}

func TestCommitterMaxBatchOneWritesEachCommitAlone(t *testing.T) {
	w := &gateWriter{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	c := startCommitter(t, CommitterConfig{MaxBatch: 1}, w)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Commit(context.Background(), commitFor("x")) }()
	}
	for i := 0; i < 5; i++ {
		<-w.started
		w.gate <- struct{}{}
	}
	wg.Wait()
	if got := w.sizes(); len(got) != 5 {
		t.Fatalf("batch sizes = %v, want five batches of one", got)
	}
	for _, s := range w.sizes() {
		if s != 1 {
			t.Fatalf("batch sizes = %v, want all 1", w.sizes())
		}
	}
}

func TestCommitterRowErrorFailsOnlyItsCommit(t *testing.T) {
	w := &gateWriter{fail: func(c truth.Commit) error {
		if c.Snapshot.Key.ID == "loser" {
			return truth.ErrRevisionConflict
		}
		return nil
	}}
	c := startCommitter(t, CommitterConfig{}, w)
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for _, id := range []string{"a", "loser", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Commit(context.Background(), commitFor(id))
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	if !errors.Is(errs["loser"], truth.ErrRevisionConflict) {
		t.Errorf("loser: %v, want ErrRevisionConflict", errs["loser"])
	}
	if errs["a"] != nil || errs["b"] != nil {
		t.Errorf("winners failed: a=%v b=%v", errs["a"], errs["b"])
	}
	if _, n := c.Stats(); n != 2 {
		t.Errorf("durable commits = %d, want 2", n)
	}
}

func TestCommitterBatchErrorReachesEveryCommit(t *testing.T) {
	boom := errors.New("database unreachable")
	w := &gateWriter{err: boom}
	c := startCommitter(t, CommitterConfig{}, w)
	for i := 0; i < 3; i++ {
		if err := c.Commit(context.Background(), commitFor("x")); !errors.Is(err, boom) {
			t.Fatalf("commit %d: %v, want %v", i, err, boom)
		}
	}
}

func TestCommitterDrainsQueuedCommitsOnStop(t *testing.T) {
	w := &gateWriter{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	c, err := NewCommitter(CommitterConfig{MaxBatch: 8}, w, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	var wg sync.WaitGroup
	results := make([]error, 10)
	commit := func(i int) {
		defer wg.Done()
		results[i] = c.Commit(context.Background(), commitFor("x"))
	}
	wg.Add(1)
	go commit(0)
	<-w.started // the first write is in flight
	for i := 1; i < len(results); i++ {
		wg.Add(1)
		go commit(i)
	}
	waitFor(t, "queued commits", func() bool { return len(c.queue) == 9 })
	cancel()
	go func() {
		for range w.started {
			w.gate <- struct{}{}
		}
	}()
	w.gate <- struct{}{}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, err := range results {
		if err != nil {
			t.Errorf("commit %d lost on stop: %v", i, err)
		}
	}
	if err := c.Commit(context.Background(), commitFor("late")); !errors.Is(err, ErrCommitterStopped) {
		t.Errorf("commit after stop: %v, want ErrCommitterStopped", err)
	}
}

func TestCommitterConfigValidate(t *testing.T) {
	for _, cfg := range []CommitterConfig{
		{MaxBatch: -1, QueueDepth: 10, WriteTimeout: time.Second},
		{MaxBatch: 10, QueueDepth: 5, WriteTimeout: time.Second},
		{MaxBatch: 1, QueueDepth: 5, WriteTimeout: -1},
	} {
		if _, err := NewCommitter(cfg, &gateWriter{}, discard()); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
