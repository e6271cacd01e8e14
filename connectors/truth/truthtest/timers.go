package truthtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// TimerLister lists one aggregate's timers without leasing them. Both
// adapters provide it and the timer tests require it, to see timers a lease
// would hide from DueTimers.
type TimerLister interface {
	Timers(ctx context.Context, key truth.Key) ([]truth.DueTimer, error)
}

func runTimers(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"SetReplaceCancel", testTimerSetReplaceCancel},
		{"AtomicWithSnapshot", testTimerAtomic},
		{"Invalid", testTimerInvalid},
		{"DueOrder", testTimerDueOrder},
		{"TenantIsolation", testTimerTenants},
		{"Reopen", testTimerReopen},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
	if h.TimerLease > 0 {
		t.Run("Lease", func(t *testing.T) { testTimerLease(t, h) })
	}
}

func timerStore(t testing.TB, s truth.Store) (truth.TimerStore, TimerLister) {
	t.Helper()
	ts, ok := s.(truth.TimerStore)
	if !ok {
		t.Fatalf("%T does not implement truth.TimerStore", s)
	}
	tl, ok := s.(TimerLister)
	if !ok {
		t.Fatalf("%T does not implement truthtest.TimerLister", s)
	}
	return ts, tl
}

func setTimer(id string, at time.Time, command string) truth.TimerChange {
	return truth.TimerChange{TimerID: id, At: at, Command: command, Payload: []byte(`{"timer":"` + id + `"}`)}
}

func withTimers(c truth.Commit, tc ...truth.TimerChange) truth.Commit {
	c.Timers = tc
	return c
}

// wantTimers checks key's timers (id, time, command, payload) against want.
func wantTimers(t testing.TB, l TimerLister, key truth.Key, want ...truth.TimerChange) {
	t.Helper()
	got, err := l.Timers(context.Background(), key)
	if err != nil {
		t.Fatalf("Timers %v: %v", key, err)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].TimerID < want[j].TimerID })
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.Key == key && g.TimerID == w.TimerID && g.At.Equal(truth.TimerTime(w.At)) &&
			g.Command == w.Command && bytes.Equal(g.Payload, w.Payload)
	}
	if !ok {
		t.Fatalf("timers of %v = %s, want %s", key, fmtTimers(got), fmtChanges(want))
	}
}

func fmtTimers(ts []truth.DueTimer) string {
	var b bytes.Buffer
	for _, d := range ts {
		fmt.Fprintf(&b, "[%s/%s/%s %s at %s %s %s] ", d.Key.Tenant, d.Key.Kind, d.Key.ID, d.TimerID,
			d.At.Format(time.RFC3339Nano), d.Command, d.Payload)
	}
	return b.String()
}

func fmtChanges(ts []truth.TimerChange) string {
	var b bytes.Buffer
	for _, d := range ts {
		fmt.Fprintf(&b, "[%s at %s %s %s] ", d.TimerID, d.At.Format(time.RFC3339Nano), d.Command, d.Payload)
	}
	return b.String()
}

func dueTimers(t testing.TB, s truth.TimerStore, now time.Time, limit int) []truth.DueTimer {
	t.Helper()
	due, err := s.DueTimers(context.Background(), now, limit)
	if err != nil {
		t.Fatalf("DueTimers: %v", err)
	}
	return due
}

func testTimerSetReplaceCancel(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ts, tl := timerStore(t, s)
	ctx := context.Background()
	k := quote("q1")
	// Nanoseconds are cut to the microseconds every store keeps.
	at := base.Add(time.Hour + 789*time.Nanosecond)
	expire := setTimer("expire", at, "expire")
	remind := setTimer("remind", base.Add(30*time.Minute), "remind")
	mustCommit(t, s, withTimers(NewCommit(k, 0, ""), expire, remind))
	wantTimers(t, tl, k, expire, remind)
	if due := dueTimers(t, ts, base, 10); len(due) != 0 {
		t.Fatalf("DueTimers before any is due: %s", fmtTimers(due))
	}
	if due := dueTimers(t, ts, truth.TimerTime(at), 10); len(due) != 2 ||
		due[0].TimerID != "remind" || due[1].TimerID != "expire" || !due[1].At.Equal(truth.TimerTime(at)) {
		t.Fatalf("DueTimers at the expiry = %s, want remind then expire", fmtTimers(due))
	}

	// Setting an existing id replaces it.
	later := setTimer("expire", base.Add(2*time.Hour), "expireLater")
	later.Payload = nil
	mustCommit(t, s, withTimers(NewCommit(k, 1, ""), later))
	later.Payload = []byte{}
	got, _ := tl.Timers(ctx, k)
	if len(got) != 2 || len(got[0].Payload) != 0 {
		t.Fatalf("after replace: %s", fmtTimers(got))
	}
	later.Payload = got[0].Payload
	wantTimers(t, tl, k, later, remind)

	// A cancel bound to the old time leaves the replacement alone; one bound
	// to the current time removes it.
	mustCommit(t, s, withTimers(NewCommit(k, 2, ""), truth.TimerChange{TimerID: "expire", Cancel: true, IfAt: at}))
	wantTimers(t, tl, k, later, remind)
	mustCommit(t, s, withTimers(NewCommit(k, 3, ""), truth.TimerChange{TimerID: "expire", Cancel: true, IfAt: later.At}))
	wantTimers(t, tl, k, remind)
	// Cancelling a missing timer is no error; an unconditional cancel removes.
	mustCommit(t, s, withTimers(NewCommit(k, 4, ""),
		truth.TimerChange{TimerID: "nope", Cancel: true}, truth.TimerChange{TimerID: "remind", Cancel: true}))
	wantTimers(t, tl, k)

	// CancelTimer outside a commit, with the same rules.
	mustCommit(t, s, withTimers(NewCommit(k, 5, ""), expire))
	if err := ts.CancelTimer(ctx, k, "expire", base); err != nil {
		t.Fatalf("CancelTimer at another time: %v", err)
	}
	wantTimers(t, tl, k, expire)
	if err := ts.CancelTimer(ctx, k, "expire", at); err != nil {
		t.Fatalf("CancelTimer: %v", err)
	}
	wantTimers(t, tl, k)
	if err := ts.CancelTimer(ctx, k, "expire", time.Time{}); err != nil {
		t.Fatalf("CancelTimer of a missing timer: %v", err)
	}
	if due := dueTimers(t, ts, base.Add(24*time.Hour), 10); len(due) != 0 {
		t.Fatalf("DueTimers after every cancel: %s", fmtTimers(due))
	}
	wantSnapshot(t, s, k, 6)
}

func testTimerAtomic(t *testing.T, h Harness) {
	s, _ := open(t, h)
	_, tl := timerStore(t, s)
	k, other := quote("q1"), quote("q2")
	expire := setTimer("expire", base.Add(time.Hour), "expire")
	mustCommit(t, s, withTimers(NewCommit(k, 0, "k1"), expire))

	// A revision conflict and an idempotency conflict change no timer.
	res := commitAll(t, s,
		withTimers(NewCommit(k, 0, ""), truth.TimerChange{TimerID: "expire", Cancel: true}),
		withTimers(NewCommit(other, 0, "k1"), setTimer("x", base, "x")),
		withTimers(NewCommit(quote("ghost"), 7, ""), setTimer("x", base, "x")))
	wantResults(t, res, truth.ErrRevisionConflict, truth.ErrIdempotencyConflict, truth.ErrRevisionConflict)
	wantTimers(t, tl, k, expire)
	wantTimers(t, tl, other)
	wantTimers(t, tl, quote("ghost"))

	// In one batch, commits see each other's timers: a chained commit
	// replaces, the next cancels, a failed one in between changes nothing.
	r1 := setTimer("retry", base.Add(time.Minute), "retry")
	r2 := setTimer("retry", base.Add(2*time.Minute), "retry")
	res = commitAll(t, s,
		withTimers(NewCommit(other, 0, ""), r1, setTimer("gone", base, "gone")),
		withTimers(NewCommit(other, 1, ""), r2, truth.TimerChange{TimerID: "gone", Cancel: true}),
		withTimers(NewCommit(other, 1, ""), truth.TimerChange{TimerID: "retry", Cancel: true}),
		withTimers(NewCommit(other, 2, ""), truth.TimerChange{TimerID: "retry", Cancel: true, IfAt: r1.At}))
	wantResults(t, res, nil, nil, truth.ErrRevisionConflict, nil)
	wantTimers(t, tl, other, r2)
	wantSnapshot(t, s, other, 3)
}

func testTimerInvalid(t *testing.T, h Harness) {
	s, _ := open(t, h)
	_, tl := timerStore(t, s)
	twice := withTimers(NewCommit(quote("twice"), 0, ""), setTimer("a", base, "a"), truth.TimerChange{TimerID: "a", Cancel: true})
	noCmd := withTimers(NewCommit(quote("nocmd"), 0, ""), truth.TimerChange{TimerID: "a", At: base})
	noTime := withTimers(NewCommit(quote("notime"), 0, ""), truth.TimerChange{TimerID: "a", Command: "a"})
	noID := withTimers(NewCommit(quote("noid"), 0, ""), setTimer("", base, "a"))
	good := withTimers(NewCommit(quote("good"), 0, ""), setTimer("a", base, "a"))
	res := commitAll(t, s, twice, noCmd, noTime, noID, good)
	wantResults(t, res, errInvalid, errInvalid, errInvalid, errInvalid, nil)
	for i, err := range res[:4] {
		if !errors.Is(err, truth.ErrInvalidCommit) {
			t.Errorf("commit %d: %v, want ErrInvalidCommit", i, err)
		}
	}
	for _, id := range []string{"twice", "nocmd", "notime", "noid"} {
		wantMissing(t, s, quote(id))
		wantTimers(t, tl, quote(id))
	}
	wantTimers(t, tl, quote("good"), setTimer("a", base, "a"))
}

func testTimerDueOrder(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ts, _ := timerStore(t, s)
	// Timers across aggregates and kinds, committed out of time order; two
	// are due at the same instant.
	type want struct {
		key truth.Key
		id  string
		at  time.Time
	}
	plan := []want{
		{quote("a"), "t3", base.Add(3 * time.Second)},
		{quote("b"), "t1", base.Add(1 * time.Second)},
		{truth.Key{Tenant: "acme", Kind: "order", ID: "a"}, "t2", base.Add(2 * time.Second)},
		{quote("c"), "t2b", base.Add(2 * time.Second)},
		{quote("d"), "t5", base.Add(5 * time.Second)},
		{quote("e"), "past", base.Add(-time.Hour)},
	}
	var batch []truth.Commit
	for _, p := range plan {
		batch = append(batch, withTimers(NewCommit(p.key, 0, ""), setTimer(p.id, p.at, "fire")))
	}
	mustCommit(t, s, batch...)

	// Up to now+3s, at most 3: the earliest three.
	due := dueTimers(t, ts, base.Add(3*time.Second), 3)
	if len(due) != 3 || due[0].TimerID != "past" || due[1].TimerID != "t1" ||
		(due[2].TimerID != "t2" && due[2].TimerID != "t2b") {
		t.Fatalf("first 3 due = %s", fmtTimers(due))
	}
	for _, d := range due {
		if err := ts.CancelTimer(context.Background(), d.Key, d.TimerID, d.At); err != nil {
			t.Fatal(err)
		}
	}
	due = dueTimers(t, ts, base.Add(3*time.Second), 10)
	var ids []string
	for _, d := range due {
		ids = append(ids, d.TimerID)
	}
	if len(due) != 2 || !due[0].At.Equal(base.Add(2*time.Second)) || due[1].TimerID != "t3" {
		t.Fatalf("remaining due at +3s = %v (%s), want the other +2s timer then t3", ids, fmtTimers(due))
	}
	for i := 1; i < len(due); i++ {
		if due[i].At.Before(due[i-1].At) {
			t.Fatalf("due timers out of order: %s", fmtTimers(due))
		}
	}
	if due := dueTimers(t, ts, base.Add(3*time.Second), 0); len(due) != 0 {
		t.Fatalf("limit 0 returned %d timers", len(due))
	}
}

func testTimerTenants(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ts, tl := timerStore(t, s)
	a := truth.Key{Tenant: "a", Kind: "quote", ID: "q1"}
	b := truth.Key{Tenant: "b", Kind: "quote", ID: "q1"}
	ta := setTimer("expire", base.Add(time.Minute), "expireA")
	tb := setTimer("expire", base.Add(2*time.Minute), "expireB")
	mustCommit(t, s, withTimers(NewCommit(a, 0, ""), ta), withTimers(NewCommit(b, 0, ""), tb))
	wantTimers(t, tl, a, ta)
	wantTimers(t, tl, b, tb)
	// A cancel in one tenant leaves the other alone.
	mustCommit(t, s, withTimers(NewCommit(a, 1, ""), truth.TimerChange{TimerID: "expire", Cancel: true}))
	wantTimers(t, tl, b, tb)
	if err := ts.CancelTimer(context.Background(), truth.Key{Tenant: "c", Kind: "quote", ID: "q1"}, "expire", time.Time{}); err != nil {
		t.Fatal(err)
	}
	wantTimers(t, tl, b, tb)
	due := dueTimers(t, ts, base.Add(time.Hour), 10)
	if len(due) != 1 || due[0].Key != b || due[0].Command != "expireB" {
		t.Fatalf("due = %s, want only tenant b's", fmtTimers(due))
	}
}

func testTimerReopen(t *testing.T, h Harness) {
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	k := quote("q1")
	keep := setTimer("keep", base.Add(time.Minute), "keep")
	mustCommit(t, s, withTimers(NewCommit(k, 0, ""), keep, setTimer("drop", base, "drop")))
	mustCommit(t, s, withTimers(NewCommit(k, 1, ""), truth.TimerChange{TimerID: "drop", Cancel: true}))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.Open(t, loc)
	defer s.Close()
	ts, tl := timerStore(t, s)
	wantTimers(t, tl, k, keep)
	if due := dueTimers(t, ts, base.Add(time.Minute), 10); len(due) != 1 || due[0].TimerID != "keep" {
		t.Fatalf("due after reopen = %s", fmtTimers(due))
	}
}

// testTimerLease runs for stores that lease (Harness.TimerLease > 0): a
// returned timer is hidden from other callers until its lease runs out or it
// is replaced, and concurrent pollers claim disjoint timers.
func testTimerLease(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ts, _ := timerStore(t, s)
	k := quote("q1")
	mustCommit(t, s, withTimers(NewCommit(k, 0, ""), setTimer("expire", base, "expire")))
	start := time.Now()
	if due := dueTimers(t, ts, base, 10); len(due) != 1 {
		t.Fatalf("first poll = %s", fmtTimers(due))
	}
	if due := dueTimers(t, ts, base, 10); len(due) != 0 {
		t.Fatalf("second poll within the lease = %s, want nothing", fmtTimers(due))
	}
	// After the lease it is offered again.
	deadline := time.Now().Add(h.TimerLease + 10*time.Second)
	for {
		due := dueTimers(t, ts, base, 10)
		if len(due) == 1 {
			if el := time.Since(start); el < h.TimerLease {
				t.Fatalf("offered again after %v, before the lease of %v ran out", el, h.TimerLease)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer not offered again after its lease of %v", h.TimerLease)
		}
		time.Sleep(h.TimerLease / 10)
	}
	// Replacing a leased timer drops the lease.
	mustCommit(t, s, withTimers(NewCommit(k, 1, ""), setTimer("expire", base.Add(time.Second), "expire")))
	if due := dueTimers(t, ts, base.Add(time.Second), 10); len(due) != 1 {
		t.Fatalf("replaced timer not offered at once: %s", fmtTimers(due))
	}

	// Concurrent pollers get disjoint timers and, together, all of them.
	const n = 40
	var batch []truth.Commit
	for i := range n {
		batch = append(batch, withTimers(NewCommit(quote(fmt.Sprintf("c%02d", i)), 0, ""), setTimer("t", base, "t")))
	}
	mustCommit(t, s, batch...)
	var (
		mu   sync.Mutex
		seen = map[truth.Key]int{}
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				due, err := ts.DueTimers(context.Background(), base, 5)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range due {
					seen[d.Key]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("pollers claimed %d distinct timers, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("timer of %v claimed %d times within its lease", k, c)
		}
	}
}
