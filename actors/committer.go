package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// BatchWriter writes a batch of commits durably; truth.Store implements it.
// See truth.Store.Commit for the contract. It is only called from the
// committer's single writer goroutine.
type BatchWriter interface {
	Commit(ctx context.Context, batch []truth.Commit) ([]error, error)
}

// CommitterConfig configures a Committer.
type CommitterConfig struct {
	// MaxBatch is the most commits written in one batch. 1 turns group commit
	// off (every commit is its own transaction): the benchmark baseline.
	// Default 512.
	MaxBatch int
	// QueueDepth is how many commits may wait for the writer. Default
	// max(4096, 8×MaxBatch).
	QueueDepth int
	// WriteTimeout bounds one batch write. Default 10s.
	WriteTimeout time.Duration
	// OnDurable, when set, is called after every batch that made at least one
	// commit durable (the outbox relay's Notify). It must not block.
	OnDurable func()
}

func (c *CommitterConfig) setDefaults() {
	if c.MaxBatch == 0 {
		c.MaxBatch = 512
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = max(4096, 8*c.MaxBatch)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
}

// Validate reports an invalid configuration.
func (c CommitterConfig) Validate() error {
	if c.MaxBatch < 1 {
		return fmt.Errorf("committer: MaxBatch must be >= 1, got %d", c.MaxBatch)
	}
	if c.QueueDepth < c.MaxBatch {
		return fmt.Errorf("committer: QueueDepth (%d) must be >= MaxBatch (%d)", c.QueueDepth, c.MaxBatch)
	}
	if c.WriteTimeout <= 0 {
		return errors.New("committer: WriteTimeout must be positive")
	}
	return nil
}

// ErrCommitterStopped: the committer is not running; nothing was written.
var ErrCommitterStopped = errors.New("actors: committer stopped")

type commitRequest struct {
	commit truth.Commit
	done   chan error // buffered, 1
}

// Committer is the node's group commit. Grains hand it their commits and
// wait; one writer goroutine takes every commit that queued while the
// previous batch was being written and writes them as the next batch (one
// transaction, one sync). Each commit gets its own result: a revision
// conflict fails that commit only.
type Committer struct {
	cfg      CommitterConfig
	store    BatchWriter
	log      *slog.Logger
	queue    chan commitRequest
	stop     chan struct{} // closed when Run stops taking new work
	finished chan struct{} // closed when Run has returned

	batches atomic.Uint64
	commits atomic.Uint64
}

// NewCommitter returns a committer writing to store. Call Run to start it.
func NewCommitter(cfg CommitterConfig, store BatchWriter, log *slog.Logger) (*Committer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Committer{
		cfg:      cfg,
		store:    store,
		log:      log,
		queue:    make(chan commitRequest, cfg.QueueDepth),
		stop:     make(chan struct{}),
		finished: make(chan struct{}),
	}, nil
}

// Commit queues c and waits until it is durable or has failed. It returns
// nil, truth.ErrRevisionConflict, truth.ErrIdempotencyConflict, or an error
// of the batch (the write's outcome may then be unknown: reload before
// deciding again). Safe for concurrent use.
func (c *Committer) Commit(ctx context.Context, commit truth.Commit) error {
	select {
	case <-c.stop:
		return ErrCommitterStopped
	default:
	}
	req := commitRequest{commit: commit, done: make(chan error, 1)}
	select {
	case c.queue <- req:
	case <-c.stop:
		return ErrCommitterStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, wait for the writer even if ctx ends: the commit may land,
	// and the caller must know which.
	select {
	case err := <-req.done:
		return err
	case <-c.finished:
		// Queued after the final drain: never written.
		select {
		case err := <-req.done:
			return err
		default:
			return ErrCommitterStopped
		}
	}
}

// Stats returns the number of batches written and of commits made durable.
func (c *Committer) Stats() (batches, commits uint64) {
	return c.batches.Load(), c.commits.Load()
}

// Run writes batches until ctx ends, then drains what is queued, writes it,
// and returns. Commits arriving after Run returned fail with
// ErrCommitterStopped.
func (c *Committer) Run(ctx context.Context) error {
	defer close(c.finished)
	batch := make([]commitRequest, 0, c.cfg.MaxBatch)
	for {
		select {
		case req := <-c.queue:
			batch = c.gather(append(batch[:0], req))
			c.write(batch)
		case <-ctx.Done():
			close(c.stop)
			// Drain: requests queued before stop still get written.
			for {
				select {
				case req := <-c.queue:
					batch = c.gather(append(batch[:0], req))
					c.write(batch)
				default:
					return nil
				}
			}
		}
	}
}

// gather adds every already-queued request to batch, up to MaxBatch.
func (c *Committer) gather(batch []commitRequest) []commitRequest {
	for len(batch) < c.cfg.MaxBatch {
		select {
		case req := <-c.queue:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

func (c *Committer) write(batch []commitRequest) {
	commits := make([]truth.Commit, len(batch))
	for i, r := range batch {
		commits[i] = r.commit
	}
	// The write is not bound to the caller's context: a batch is shared.
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	results, err := c.store.Commit(ctx, commits)
	cancel()
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("committer: store returned %d results for %d commits", len(results), len(batch))
	}
	if err != nil {
		c.log.Warn("commit batch failed", "commits", len(batch), "error", err)
		for _, r := range batch {
			r.done <- fmt.Errorf("actors: commit batch: %w", err)
		}
		return
	}
	durable := 0
	for i, r := range batch {
		if results[i] == nil {
			durable++
		}
		r.done <- results[i]
	}
	c.batches.Add(1)
	c.commits.Add(uint64(durable))
	if durable > 0 && c.cfg.OnDurable != nil {
		c.cfg.OnDurable()
	}
}
