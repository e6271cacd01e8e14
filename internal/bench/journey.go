package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// measure books one finished command: the progress counters, and inside the
// window its latency (overall and, for FlowAccept, per command) or its
// error. It reports whether the command counted inside the window.
func (r *run) measure(st *clientStats, command string, t0, t1 time.Duration, ce *CommandError) bool {
	if ce != nil {
		r.failed.Add(1)
	} else {
		r.ok.Add(1)
	}
	ws, we := r.windowStart.Load(), r.windowEnd.Load()
	warmup := ws == 0 || int64(t0) < ws
	record := func() {
		st.hist.Record(t1 - t0)
		if st.perCommand != nil {
			h := st.perCommand[command]
			if h == nil {
				h = &Histogram{}
				st.perCommand[command] = h
			}
			h.Record(t1 - t0)
		}
	}
	switch {
	case ce != nil && warmup:
		st.warmupErrors[ce.Code]++
	case ce != nil:
		// Counted however late it failed: a failure is never hidden.
		st.errors[ce.Code]++
	case warmup, we > 0 && int64(t1) > we:
		// Not inside the window.
	case r.cfg.Commands > 0:
		n := r.measured.Add(1)
		if n > int64(r.cfg.Commands) {
			return false
		}
		record()
		if n == int64(r.cfg.Commands) {
			r.windowEnd.Store(int64(t1))
			r.reachedOnce.Do(func() { close(r.reached) })
		}
		return true
	default:
		record()
		return true
	}
	return false
}

// maxApprovals bounds the approve commands of one journey: the demo
// policy asks for at most two levels.
const maxApprovals = 3

// journeyClient runs FlowAccept until stop closes: every iteration sells one
// fresh quote, from create to accept with its rendered document. A failed
// step abandons the quote and starts the next. It owns st.
func (r *run) journeyClient(ctx context.Context, id int, st *clientStats, stop <-chan struct{}) {
	st.errors = map[string]uint64{}
	st.warmupErrors = map[string]uint64{}
	st.perCommand = map[string]*Histogram{}
	var seq uint64
	// step sends one command, measures it and returns its reply.
	step := func(quoteID, command string, body any) (string, []byte, *CommandError, bool) {
		b, _ := json.Marshal(body)
		seq++
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		t0 := time.Since(r.base)
		gotID, reply, err := r.snd.send(rctx, quoteID, command, r.key(command, id, seq), b)
		t1 := time.Since(r.base)
		cancel()
		var ce *CommandError
		if err != nil && !errors.As(err, &ce) {
			ce = &CommandError{Code: CodeTransport, Err: err}
		}
		counted := r.measure(st, command, t0, t1, ce)
		return gotID, reply, ce, counted
	}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		accepted, ce := r.journey(id, n, step)
		if accepted {
			st.journeys++
		}
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

// journey sells one quote through step. accepted is true when its accept
// succeeded inside the window; ce is the failure that ended it early.
func (r *run) journey(client, n int, step func(quoteID, command string, body any) (string, []byte, *CommandError, bool)) (accepted bool, ce *CommandError) {
	bad := func(command string, err error) *CommandError {
		return &CommandError{Code: CodeBadReply, Err: fmt.Errorf("%s: %w", command, err)}
	}
	quoteID, _, ce, _ := step("", "create", map[string]string{
		"customerId":   "bench-" + strconv.Itoa(client) + "-" + strconv.Itoa(n),
		"customerName": "Bench customer " + strconv.Itoa(client), "currency": r.cfg.Currency,
	})
	if ce != nil {
		return false, ce
	}
	if quoteID == "" {
		return false, bad("create", errors.New("reply names no quote id"))
	}
	for _, c := range []struct {
		command string
		body    any
	}{
		{"addLine", map[string]any{"offeringId": r.cfg.OfferingID, "quantity": 1}},
		{"price", map[string]any{}},
		{"submit", map[string]any{}},
	} {
		if _, _, ce, _ := step(quoteID, c.command, c.body); ce != nil {
			return false, ce
		}
	}
	for i := 0; ; i++ {
		_, reply, ce, _ := step(quoteID, "approve", map[string]any{})
		if ce != nil {
			return false, ce
		}
		var q struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(reply, &q); err != nil {
			return false, bad("approve", err)
		}
		if q.Status == "approved" {
			break
		}
		if i+1 == maxApprovals {
			return false, bad("approve", fmt.Errorf("quote %s still %s after %d approvals", quoteID, q.Status, maxApprovals))
		}
	}
	_, reply, ce, _ := step(quoteID, "renderDocument", map[string]any{})
	if ce != nil {
		return false, ce
	}
	var doc struct {
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(reply, &doc); err != nil || len(doc.SHA256) != 64 {
		return false, bad("renderDocument", fmt.Errorf("reply without a sha256: %v", err))
	}
	_, _, ce, counted := step(quoteID, "accept", map[string]any{"documentSha256": doc.SHA256, "channel": "api"})
	return ce == nil && counted, ce
}
