package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grainline/grainline/grains"
)

// Result is the outcome of one run. Only commands that started after the
// warm-up and finished inside the measured window count.
type Result struct {
	Transport Transport
	Clients   int
	Quotes    int
	// Commands is the number of successful commands in the window.
	Commands uint64
	// Errors counts failed commands in the window by problem code (or by a
	// client-side Code* constant). Empty when there were none.
	Errors map[string]uint64
	// WarmupErrors counts failed commands during the warm-up.
	WarmupErrors map[string]uint64
	// Duration is the measured window.
	Duration time.Duration
	// Throughput is Commands per second of Duration.
	Throughput float64
	// Latency percentiles of the successful commands.
	P50, P95, P99, P999, Max, Mean time.Duration
	// Latency is the histogram the percentiles come from.
	Latency *Histogram
	// Batches and Commits are the committer's deltas over the window; both
	// are zero when Config.CommitStats is not set.
	Batches, Commits uint64
	// Flow is the flow that ran. With FlowAccept, Journeys counts the
	// quotes accepted inside the window and PerCommand breaks the latency
	// down by command.
	Flow       Flow
	Journeys   uint64
	PerCommand map[string]CommandLatency
}

// CommandLatency is the latency of one command of a flow.
type CommandLatency struct {
	Count         uint64
	P50, P99, Max time.Duration
}

// ErrorCount returns the number of failed commands in the window.
func (r Result) ErrorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// BatchMean is the mean number of commits per committer batch in the
// window, or 0 when unknown.
func (r Result) BatchMean() float64 {
	if r.Batches == 0 {
		return 0
	}
	return float64(r.Commits) / float64(r.Batches)
}

// ErrorSummary formats Errors as "code=n code=n", sorted by code, or "0".
func (r Result) ErrorSummary() string {
	if len(r.Errors) == 0 {
		return "0"
	}
	s := ""
	for _, code := range slices.Sorted(maps.Keys(r.Errors)) {
		if s != "" {
			s += " "
		}
		s += code + "=" + strconv.FormatUint(r.Errors[code], 10)
	}
	return s
}

// Run creates the quotes (unmeasured), then runs cfg.Clients clients that
// alternately add and remove a line on their quotes, each command with a
// fresh idempotency key, until the window closes. A live progress line goes
// to progress (nil for none); it is redrawn in place when progress is a
// terminal. Run returns an error when the set-up fails or ctx ends; failed
// commands during the run are counted in the Result, not returned.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	snd, err := newSender(cfg)
	if err != nil {
		return Result{}, err
	}
	defer snd.close()

	r := &run{cfg: cfg, snd: snd, runID: runID()}
	var quotes []string
	if cfg.Flow == FlowLines {
		if quotes, err = r.createQuotes(ctx); err != nil {
			return Result{}, err
		}
	}
	return r.load(ctx, quotes, newProgress(progress, string(cfg.Transport)))
}

func runID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type run struct {
	cfg   Config
	snd   sender
	runID string
	base  time.Time

	// Window bounds in nanoseconds since base; 0 while unset.
	windowStart atomic.Int64
	windowEnd   atomic.Int64
	measured    atomic.Int64 // successful commands counted (Commands mode)
	reached     chan struct{}
	reachedOnce sync.Once

	ok, failed atomic.Uint64 // all commands, for the progress line
}

// createQuotes creates cfg.Quotes quotes with cfg.Clients concurrent
// creators and returns their ids.
func (r *run) createQuotes(ctx context.Context) ([]string, error) {
	ids := make([]string, r.cfg.Quotes)
	next := atomic.Int64{}
	errs := make([]error, r.cfg.Clients)
	var wg sync.WaitGroup
	for c := range r.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				q := int(next.Add(1)) - 1
				if q >= len(ids) {
					return
				}
				body, _ := json.Marshal(map[string]string{
					"customerId": "bench-" + strconv.Itoa(q), "customerName": "Bench customer " + strconv.Itoa(q), "currency": r.cfg.Currency,
				})
				rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
				id, _, err := r.snd.send(rctx, "", "create", r.key("create", q, 0), body)
				cancel()
				if err == nil && id == "" {
					err = &CommandError{Code: CodeBadReply, Err: errors.New("create reply names no quote id")}
				}
				if err != nil {
					errs[c] = fmt.Errorf("bench: create quote %d: %w", q, err)
					return
				}
				ids[q] = id
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ids, nil
}

// key is a fresh idempotency key, unique per run, client and command.
func (r *run) key(kind string, client int, seq uint64) string {
	return "bench-" + r.runID + "-" + kind + "-" + strconv.Itoa(client) + "-" + strconv.FormatUint(seq, 10)
}

// slot is one quote a client works on, and the line it added and has not
// removed yet.
type slot struct {
	quote   string
	pending string
}

// clientStats is what one client measured; merged after the run.
type clientStats struct {
	hist         Histogram
	errors       map[string]uint64
	warmupErrors map[string]uint64
	perCommand   map[string]*Histogram // FlowAccept only
	journeys     uint64                // FlowAccept: accepts inside the window
}

func (r *run) slotsFor(client int, quotes []string) []slot {
	if len(quotes) < r.cfg.Clients {
		return []slot{{quote: quotes[client%len(quotes)]}}
	}
	var s []slot
	for q := client; q < len(quotes); q += r.cfg.Clients {
		s = append(s, slot{quote: quotes[q]})
	}
	return s
}

func (r *run) load(ctx context.Context, quotes []string, prog *progress) (Result, error) {
	cfg := r.cfg
	r.base = time.Now()
	r.reached = make(chan struct{})
	stop := make(chan struct{})
	stats := make([]clientStats, cfg.Clients)
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Flow == FlowAccept {
				r.journeyClient(ctx, c, &stats[c], stop)
				return
			}
			r.client(ctx, c, r.slotsFor(c, quotes), &stats[c], stop)
		}()
	}

	var batches0, commits0, batches1, commits1 uint64
	sample := func() (uint64, uint64) {
		if cfg.CommitStats == nil {
			return 0, 0
		}
		return cfg.CommitStats()
	}
	ticker := time.NewTicker(cfg.ProgressInterval)
	defer ticker.Stop()
	warm := time.NewTimer(cfg.Warmup)
	defer warm.Stop()
	var windowTimer <-chan time.Time
	var runErr error
	lastOK, lastAt := uint64(0), time.Duration(0)
	measuring := false
loop:
	for {
		select {
		case <-ctx.Done():
			runErr = fmt.Errorf("bench: interrupted: %w", ctx.Err())
			r.windowEnd.CompareAndSwap(0, int64(time.Since(r.base)))
			break loop
		case <-warm.C:
			batches0, commits0 = sample()
			start := time.Since(r.base)
			if cfg.Commands == 0 {
				r.windowEnd.Store(int64(start + cfg.Duration))
				t := time.NewTimer(cfg.Duration)
				defer t.Stop()
				windowTimer = t.C
			}
			r.windowStart.Store(int64(start))
			measuring = true
		case <-windowTimer:
			break loop
		case <-r.reached:
			break loop
		case <-ticker.C:
			now := time.Since(r.base)
			ok := r.ok.Load()
			rate := float64(ok-lastOK) / (now - lastAt).Seconds()
			lastOK, lastAt = ok, now
			phase, elapsed := "warmup", now
			if measuring {
				phase, elapsed = "measure", now-time.Duration(r.windowStart.Load())
			}
			prog.update(phase, elapsed, ok, r.failed.Load(), rate)
		}
	}
	batches1, commits1 = sample()
	close(stop)
	wg.Wait()
	prog.done()

	res := Result{
		Transport: cfg.Transport, Clients: cfg.Clients, Quotes: len(quotes),
		Errors: map[string]uint64{}, WarmupErrors: map[string]uint64{},
		Latency: &Histogram{}, Flow: cfg.Flow,
	}
	perCommand := map[string]*Histogram{}
	for i := range stats {
		res.Latency.Merge(&stats[i].hist)
		res.Journeys += stats[i].journeys
		for name, h := range stats[i].perCommand {
			if perCommand[name] == nil {
				perCommand[name] = &Histogram{}
			}
			perCommand[name].Merge(h)
		}
		for code, n := range stats[i].errors {
			res.Errors[code] += n
		}
		for code, n := range stats[i].warmupErrors {
			res.WarmupErrors[code] += n
		}
	}
	start, end := r.windowStart.Load(), r.windowEnd.Load()
	if start > 0 && end > start {
		res.Duration = time.Duration(end - start)
	}
	if res.Duration > 0 {
		res.Throughput = float64(res.Latency.Count()) / res.Duration.Seconds()
	}
	res.Commands = res.Latency.Count()
	res.P50, res.P95, res.P99, res.P999 = res.Latency.Quantile(0.50), res.Latency.Quantile(0.95), res.Latency.Quantile(0.99), res.Latency.Quantile(0.999)
	res.Max, res.Mean = res.Latency.Max(), res.Latency.Mean()
	if cfg.CommitStats != nil {
		res.Batches, res.Commits = batches1-batches0, commits1-commits0
	}
	if len(perCommand) > 0 {
		res.PerCommand = map[string]CommandLatency{}
		for name, h := range perCommand {
			res.PerCommand[name] = CommandLatency{Count: h.Count(), P50: h.Quantile(0.50), P99: h.Quantile(0.99), Max: h.Max()}
		}
	}
	if runErr == nil && res.Duration == 0 {
		runErr = errors.New("bench: the measured window never opened")
	}
	return res, runErr
}

// client sends commands until stop closes. It owns st.
func (r *run) client(ctx context.Context, id int, slots []slot, st *clientStats, stop <-chan struct{}) {
	st.errors = map[string]uint64{}
	st.warmupErrors = map[string]uint64{}
	addBody, _ := json.Marshal(map[string]any{"offeringId": r.cfg.OfferingID, "quantity": 1})
	var seq uint64
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		s := &slots[i%len(slots)]
		command, body := "addLine", addBody
		if s.pending != "" {
			command = "removeLine"
			body, _ = json.Marshal(map[string]string{"lineId": s.pending})
		}
		seq++
		key := r.key(command, id, seq)
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		t0 := time.Since(r.base)
		_, reply, err := r.snd.send(rctx, s.quote, command, key, body)
		t1 := time.Since(r.base)
		cancel()
		if err == nil && command == "addLine" {
			var state struct {
				LineSeq int `json:"lineSeq"`
			}
			if uerr := json.Unmarshal(reply, &state); uerr != nil || state.LineSeq <= 0 {
				err = &CommandError{Code: CodeBadReply, Err: fmt.Errorf("addLine reply without lineSeq: %v", uerr)}
			} else {
				// The reply is the state right after this command, so the
				// line this command added is the last one ever added.
				s.pending = strconv.Itoa(state.LineSeq)
			}
		} else if err == nil {
			s.pending = ""
		}

		var ce *CommandError
		if err != nil && !errors.As(err, &ce) {
			ce = &CommandError{Code: CodeTransport, Err: err}
		}
		if ce != nil && command == "removeLine" && ce.Code == string(grains.CodeValidation) {
			// The line is gone already (an earlier remove that timed out
			// was applied after all).
			s.pending = ""
		}
		r.measure(st, command, t0, t1, ce)

		if ce != nil && ce.Status == 0 {
			// The front door is unreachable: do not spin.
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}
