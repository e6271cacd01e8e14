package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/grains"
)

// reminder is a test-only grain kind with durable timers: "remind" sets
// timer ID at At (replacing one of the same ID), "cancel" cancels it, and
// the timer fires "ring", which counts. A ring for ID "bad" is rejected; one
// for an ID starting "flaky" fails transiently while the kind's failure budget lasts.
type reminderState struct {
	Created bool     `json:"created"`
	Rang    []string `json:"rang"`
}

type reminderCmd struct {
	name string
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

func (c reminderCmd) CommandName() string { return c.name }

type reminderEvent struct {
	Type string    `json:"type"`
	ID   string    `json:"id,omitempty"`
	At   time.Time `json:"at,omitempty"`
	Note string    `json:"note,omitempty"`
}

func (e reminderEvent) EventName() string { return e.Type }

func (e reminderEvent) Timers() (set []grains.Timer, cancel []string) {
	switch e.Type {
	case "Reminded":
		body := map[string]string{"id": e.ID}
		if e.Note != "" {
			body["note"] = e.Note
		}
		payload, _ := json.Marshal(body)
		return []grains.Timer{{ID: e.ID, At: e.At, Command: "ring", Payload: payload}}, nil
	case "Cancelled":
		return nil, []string{e.ID}
	}
	return nil, nil
}

func reminderKind(flaky *atomic.Int32, decisions *atomic.Int32) Kind {
	b := grains.Behavior[reminderState]{
		Kind: "reminder",
		Decide: func(s reminderState, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
			c := cmd.(reminderCmd)
			if c.name == "create" {
				return []grains.Event{reminderEvent{Type: "Created"}}, nil
			}
			if !s.Created {
				return nil, grains.Errorf(grains.CodeNotFound, "no reminder")
			}
			switch c.name {
			case "remind":
				return []grains.Event{reminderEvent{Type: "Reminded", ID: c.ID, At: c.At, Note: c.Note}}, nil
			case "cancel":
				return []grains.Event{reminderEvent{Type: "Cancelled", ID: c.ID}}, nil
			case "ring":
				decisions.Add(1)
				if err := grains.RequireRole(env, "ring", TimerRole); err != nil {
					return nil, err
				}
				switch {
				case c.ID == "bad":
					return nil, grains.Errorf(grains.CodeInvalidTransition, "cannot ring %s", c.ID)
				case strings.HasPrefix(c.ID, "flaky") && flaky.Add(-1) >= 0:
					return nil, grains.Errorf(grains.CodeUnavailable, "try later")
				}
				return []grains.Event{reminderEvent{Type: "Rang", ID: c.ID, Note: c.Note}}, nil
			}
			return nil, grains.Errorf(grains.CodeBadRequest, "unknown command %q", c.name)
		},
		Apply: func(s reminderState, ev grains.Event) reminderState {
			switch e := ev.(reminderEvent); e.Type {
			case "Created":
				s.Created = true
			case "Rang":
				if e.Note != "" {
					s.Rang = append(s.Rang, e.ID+":"+e.Note)
				} else {
					s.Rang = append(s.Rang, e.ID)
				}
			}
			return s
		},
		DecodeCommand: func(name string, payload []byte) (grains.Command, error) {
			c := reminderCmd{name: name}
			if len(payload) > 0 {
				if err := json.Unmarshal(payload, &c); err != nil {
					return nil, grains.Errorf(grains.CodeBadRequest, "bad payload: %v", err)
				}
			}
			return c, nil
		},
		Exists: func(s reminderState) bool { return s.Created },
	}
	return NewKind(b, func(string) []string { return []string{"test.reminder.events.v1"} })
}

// fakeClock is the clock timers are due by; tests move it by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type timerFixture struct {
	t         *testing.T
	store     *embedded.Store
	clock     *fakeClock
	flaky     atomic.Int32
	decisions atomic.Int32 // ring decisions taken
}

func newTimerFixture(t *testing.T) *timerFixture {
	s, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &timerFixture{t: t, store: s, clock: newFakeClock()}
}

func fastTimers() TimerConfig {
	return TimerConfig{PollInterval: 10 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
}

func (f *timerFixture) start(tc TimerConfig) *Node {
	f.t.Helper()
	n, err := StartNode(Config{Timers: tc}, Deps{
		Store: f.store, Kinds: []Kind{reminderKind(&f.flaky, &f.decisions)}, Now: f.clock.now, Log: discard(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { stopNode(f.t, n) })
	return n
}

func stopNode(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stop node: %v", err)
	}
}

func (f *timerFixture) send(n call.Sender, id, name string, body map[string]any) (call.Result, error) {
	payload, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return n.Send(ctx, call.Command{Tenant: "acme", Kind: "reminder", ID: id, Name: name, Payload: payload, Actor: "test"})
}

func (f *timerFixture) must(n call.Sender, id, name string, body map[string]any) call.Result {
	f.t.Helper()
	r, err := f.send(n, id, name, body)
	if err != nil {
		f.t.Fatalf("%s %s: %v", name, id, err)
	}
	return r
}

func (f *timerFixture) remind(n call.Sender, id, timerID string, in time.Duration) time.Time {
	f.t.Helper()
	at := f.clock.now().Add(in)
	f.must(n, id, "remind", map[string]any{"id": timerID, "at": at})
	return at
}

func (f *timerFixture) rang(n call.Reader, id string) []string {
	f.t.Helper()
	r, err := n.Get(context.Background(), "acme", "reminder", id)
	if err != nil {
		f.t.Fatalf("get %s: %v", id, err)
	}
	var s reminderState
	if err := json.Unmarshal(r.State, &s); err != nil {
		f.t.Fatal(err)
	}
	return s.Rang
}

func (f *timerFixture) timers(id string) []truth.DueTimer {
	f.t.Helper()
	ts, err := f.store.Timers(context.Background(), truth.Key{Tenant: "acme", Kind: "reminder", ID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	return ts
}

// audit counts the commits of action in the audit trail (audit-only
// records of refused commands are not commits).
func (f *timerFixture) audit(id string, action string) int {
	f.t.Helper()
	trail, err := f.store.AuditTrail(context.Background(), truth.Key{Tenant: "acme", Kind: "reminder", ID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, a := range trail {
		if a.Action == action && !strings.Contains(string(a.Detail), `"outcome":"refused"`) {
			n++
		}
	}
	return n
}

func TestTimerFiresOnceWhenDue(t *testing.T) {
	f := newTimerFixture(t)
	n := f.start(fastTimers())
	f.must(n, "r1", "create", nil)
	at := f.remind(n, "r1", "wake", time.Hour)
	if ts := f.timers("r1"); len(ts) != 1 || !ts[0].At.Equal(truth.TimerTime(at)) || ts[0].Command != "ring" {
		t.Fatalf("stored timers = %+v", ts)
	}
	// Only the timer service may ring.
	if _, err := f.send(n, "r1", "ring", map[string]any{"id": "wake"}); grains.CodeOf(err) != grains.CodeForbidden {
		t.Fatalf("ring by a client: %v, want forbidden", err)
	}

	// Not yet due: a poll fires nothing.
	f.clock.advance(59 * time.Minute)
	if err := n.Timers().FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.rang(n, "r1"); len(got) != 0 {
		t.Fatalf("rang before due: %v", got)
	}

	f.clock.advance(time.Minute)
	waitFor(t, "the timer to fire", func() bool { return len(f.rang(n, "r1")) == 1 })
	waitFor(t, "the timer to be removed", func() bool { return len(f.timers("r1")) == 0 })

	// The poller sees the same timer again (a stale read, a second poller):
	// the command is answered from its first result and changes nothing.
	before, _ := n.Get(context.Background(), "acme", "reminder", "r1")
	stale := truth.DueTimer{Key: truth.Key{Tenant: "acme", Kind: "reminder", ID: "r1"}, TimerID: "wake",
		At: truth.TimerTime(at), Command: "ring", Payload: []byte(`{"id":"wake"}`)}
	if !n.Timers().fire(context.Background(), stale) {
		t.Fatal("a repeated firing was not taken as done")
	}
	after, _ := n.Get(context.Background(), "acme", "reminder", "r1")
	if got := f.rang(n, "r1"); len(got) != 1 || after.Revision != before.Revision {
		t.Fatalf("after a repeated firing: rang %v, revision %d -> %d", got, before.Revision, after.Revision)
	}
	if c := f.audit("r1", "ring"); c != 1 {
		t.Fatalf("%d ring commits in the audit trail, want 1", c)
	}
}

func TestTimerConcurrentPollersFireEachOnce(t *testing.T) {
	f := newTimerFixture(t)
	n := f.start(TimerConfig{PollInterval: time.Hour}) // only the pollers below fire
	const grainsN, perGrain = 5, 4
	for g := range grainsN {
		id := fmt.Sprintf("r%d", g)
		f.must(n, id, "create", nil)
		for i := range perGrain {
			f.remind(n, id, fmt.Sprintf("t%d", i), time.Duration(i+1)*time.Minute)
		}
	}
	f.clock.advance(time.Hour)
	// The embedded store does not lease, so every poller sees every timer.
	var wg sync.WaitGroup
	for range 4 {
		p, err := NewTimers(fastTimers(), f.store, n, f.clock.now, discard())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.FireDue(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for g := range grainsN {
		id := fmt.Sprintf("r%d", g)
		got := f.rang(n, id)
		if len(got) != perGrain {
			t.Fatalf("%s rang %v, want each of %d timers once", id, got, perGrain)
		}
		// Each poller fires in due order, so the first ring is t0.
		if got[0] != "t0" {
			t.Errorf("%s rang %v, want t0 first", id, got)
		}
		if c := f.audit(id, "ring"); c != perGrain {
			t.Fatalf("%s has %d ring commits, want %d", id, c, perGrain)
		}
		if ts := f.timers(id); len(ts) != 0 {
			t.Fatalf("%s still has timers %+v", id, ts)
		}
	}
}

func TestTimerSurvivesRestartAndFiresPastDueAtStart(t *testing.T) {
	f := newTimerFixture(t)
	n1 := f.start(fastTimers())
	f.must(n1, "r1", "create", nil)
	f.remind(n1, "r1", "wake", time.Hour)
	stopNode(t, n1)

	// Downtime: the timer is long past due when the next node starts. That
	// node polls only hourly, so only its first poll at start can fire it.
	f.clock.advance(3 * time.Hour)
	n2 := f.start(TimerConfig{PollInterval: time.Hour})
	waitFor(t, "the past-due timer to fire at start", func() bool { return len(f.rang(n2, "r1")) == 1 })
	waitFor(t, "the timer to be removed", func() bool { return len(f.timers("r1")) == 0 })
}

func TestTimerCancelAndReplace(t *testing.T) {
	f := newTimerFixture(t)
	n := f.start(fastTimers())
	f.must(n, "r1", "create", nil)
	f.remind(n, "r1", "a", time.Hour)
	f.remind(n, "r1", "b", time.Hour)
	f.must(n, "r1", "cancel", map[string]any{"id": "a"})
	later := f.remind(n, "r1", "b", 3*time.Hour) // replaces b

	f.clock.advance(2 * time.Hour)
	if err := n.Timers().FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.rang(n, "r1"); len(got) != 0 {
		t.Fatalf("rang %v: a cancelled and b replaced should not fire at +2h", got)
	}
	if ts := f.timers("r1"); len(ts) != 1 || ts[0].TimerID != "b" || !ts[0].At.Equal(truth.TimerTime(later)) {
		t.Fatalf("stored timers = %+v, want only b at %v", ts, later)
	}
	f.clock.advance(time.Hour)
	waitFor(t, "the replaced timer to fire", func() bool { return len(f.rang(n, "r1")) == 1 })
	if got := f.rang(n, "r1"); got[0] != "b" {
		t.Fatalf("rang %v, want b", got)
	}
	waitFor(t, "the timer to be removed", func() bool { return len(f.timers("r1")) == 0 })
}

func TestTimerRejectedCommandDropsTimer(t *testing.T) {
	f := newTimerFixture(t)
	n := f.start(fastTimers())
	f.must(n, "r1", "create", nil)
	f.remind(n, "r1", "bad", time.Minute)
	f.remind(n, "r1", "good", 2*time.Minute)
	f.clock.advance(time.Hour)
	waitFor(t, "the good timer to fire", func() bool { return len(f.rang(n, "r1")) == 1 })
	waitFor(t, "both timers to be removed", func() bool { return len(f.timers("r1")) == 0 })
	// The rejected one is not tried again.
	d := f.decisions.Load()
	if err := n.Timers().FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.decisions.Load(); got != d {
		t.Fatalf("ring decided %d more times after the timers ended", got-d)
	}
}

func TestTimerTransientFailureIsRetried(t *testing.T) {
	f := newTimerFixture(t)
	f.flaky.Store(3)
	n := f.start(fastTimers())
	f.must(n, "r1", "create", nil)
	f.remind(n, "r1", "flaky", time.Minute)
	f.clock.advance(time.Hour)
	waitFor(t, "the flaky timer to fire after its failures", func() bool { return len(f.rang(n, "r1")) == 1 })
	if got := f.decisions.Load(); got < 4 {
		t.Fatalf("ring decided %d times, want 3 failures and a success", got)
	}
	waitFor(t, "the timer to be removed", func() bool { return len(f.timers("r1")) == 0 })
}

func TestTimerSetAgainWithAnotherPayloadFiresAgain(t *testing.T) {
	f := newTimerFixture(t)
	n := f.start(fastTimers())
	f.must(n, "r1", "create", nil)
	at := f.clock.now().Add(time.Minute)
	f.must(n, "r1", "remind", map[string]any{"id": "wake", "at": at, "note": "one"})
	f.clock.advance(time.Hour)
	waitFor(t, "the first firing to commit", func() bool { return len(f.rang(n, "r1")) == 1 })
	waitFor(t, "the timer to be removed", func() bool { return len(f.timers("r1")) == 0 })

	// Same id, same due time, another payload: a new timer, not a repeat.
	f.must(n, "r1", "remind", map[string]any{"id": "wake", "at": at, "note": "two"})
	waitFor(t, "the re-armed timer to fire", func() bool { return len(f.rang(n, "r1")) == 2 })
	if got := f.rang(n, "r1"); got[0] != "wake:one" || got[1] != "wake:two" {
		t.Fatalf("rang %v, want wake:one then wake:two", got)
	}
	waitFor(t, "the timer to be removed", func() bool { return len(f.timers("r1")) == 0 })
	if c := f.audit("r1", "ring"); c != 2 {
		t.Fatalf("%d ring commits in the audit trail, want 2", c)
	}
}

func TestTimerFailingTimersDoNotHoldBackLaterOnes(t *testing.T) {
	f := newTimerFixture(t)
	f.flaky.Store(1 << 20) // the flaky timers keep failing
	n := f.start(TimerConfig{Disabled: true})
	const batch = 3
	p, err := NewTimers(TimerConfig{PollInterval: time.Hour, Batch: batch, MinBackoff: time.Hour, MaxBackoff: time.Hour},
		f.store, n, f.clock.now, discard())
	if err != nil {
		t.Fatal(err)
	}
	f.must(n, "r1", "create", nil)
	for i := range batch + 5 {
		f.remind(n, "r1", fmt.Sprintf("flaky%d", i), time.Duration(i+1)*time.Second)
	}
	f.remind(n, "r1", "good", time.Minute)
	f.clock.advance(time.Hour)

	for poll := 1; ; poll++ {
		if err := p.FireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.rang(n, "r1"); len(got) == 1 && got[0] == "good" {
			break
		}
		if poll == 2 {
			t.Fatalf("after %d polls rang %v, want good", poll, f.rang(n, "r1"))
		}
	}
	ts := f.timers("r1")
	if len(ts) != batch+5 {
		t.Fatalf("%d timers left, want the %d failing ones", len(ts), batch+5)
	}
	for _, d := range ts {
		if !strings.HasPrefix(d.TimerID, "flaky") {
			t.Fatalf("timer %q left, want only the failing ones", d.TimerID)
		}
	}
	// Each failing timer was tried once, then left to its backoff.
	d := f.decisions.Load()
	if d != batch+5+1 {
		t.Fatalf("ring decided %d times, want each timer once (%d)", d, batch+5+1)
	}
	if err := p.FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.decisions.Load(); got != d {
		t.Fatalf("timers in backoff were tried again: %d more decisions", got-d)
	}
}

func TestTimerKeyRoundTrip(t *testing.T) {
	key := truth.Key{Tenant: "acme", Kind: "quote", ID: "q/1"}
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	d := truth.DueTimer{Key: key, TimerID: "retry/reserve", At: at, Command: "ring", Payload: []byte(`{"id":"x"}`)}
	k := TimerKey(d)
	id, got, ok := firedTimer(key, k)
	if !ok || id != "retry/reserve" || !got.Equal(truth.TimerTime(at)) {
		t.Fatalf("firedTimer(%q) = %q %v %v", k, id, got, ok)
	}
	for _, other := range []truth.Key{{Tenant: "evil", Kind: "quote", ID: "q/1"}, {Tenant: "acme", Kind: "order", ID: "q/1"}, {Tenant: "acme", Kind: "quote", ID: "q"}} {
		if _, _, ok := firedTimer(other, k); ok {
			t.Errorf("key %q parsed as a timer of %v", k, other)
		}
	}
	if _, _, ok := firedTimer(key, "client-key"); ok {
		t.Error("a client key parsed as a timer key")
	}
	later := d
	later.At = at.Add(time.Second)
	if TimerKey(d) == TimerKey(later) {
		t.Error("a replaced timer must get a new key")
	}
	if TimerKey(d) != TimerKey(d) {
		t.Error("a timer fired twice must get the same key")
	}
	for _, other := range []truth.DueTimer{
		{Key: key, TimerID: d.TimerID, At: at, Command: "ring", Payload: []byte(`{"id":"y"}`)},
		{Key: key, TimerID: d.TimerID, At: at, Command: "chime", Payload: d.Payload},
		{Key: key, TimerID: d.TimerID, At: at, Command: "rin", Payload: []byte(`g{"id":"x"}`)},
	} {
		if TimerKey(other) == TimerKey(d) {
			t.Errorf("timer %+v shares the key of %+v", other, d)
		}
		if id, got, ok := firedTimer(key, TimerKey(other)); !ok || id != d.TimerID || !got.Equal(truth.TimerTime(at)) {
			t.Errorf("firedTimer(%q) = %q %v %v", TimerKey(other), id, got, ok)
		}
	}
	// Keys written before the digest part existed still parse.
	legacy := fmt.Sprintf("timer:acme/quote/q%%2F1/retry%%2Freserve/%d", truth.TimerTime(at).UnixNano())
	if id, got, ok := firedTimer(key, legacy); !ok || id != "retry/reserve" || !got.Equal(truth.TimerTime(at)) {
		t.Errorf("firedTimer(%q) = %q %v %v", legacy, id, got, ok)
	}
	for _, bad := range []string{k + "/extra", k[:len(k)-1], k[:len(k)-16] + "zzzzzzzzzzzzzzzz"} {
		if _, _, ok := firedTimer(key, bad); ok {
			t.Errorf("malformed key %q parsed", bad)
		}
	}
}

func TestTimerChangesMerge(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fired := at.Add(-time.Hour)
	got, err := timerChanges([]grains.Event{
		reminderEvent{Type: "Reminded", ID: "a", At: at},
		reminderEvent{Type: "Cancelled", ID: "a"},
		reminderEvent{Type: "Reminded", ID: "b", At: at},
		reminderEvent{Type: "Rang", ID: "x"},
	}, "c", fired)
	if err != nil {
		t.Fatal(err)
	}
	want := []truth.TimerChange{{TimerID: "a", Cancel: true}, {TimerID: "b", At: at, Command: "ring"}, {TimerID: "c", Cancel: true, IfAt: fired}}
	if len(got) != len(want) {
		t.Fatalf("changes %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.TimerID != w.TimerID || g.Cancel != w.Cancel || !g.At.Equal(w.At) || !g.IfAt.Equal(w.IfAt) || g.Command != w.Command {
			t.Fatalf("change %d = %+v, want %+v", i, g, w)
		}
	}
	// A fired timer the decision re-arms is not cancelled by the firing.
	got, _ = timerChanges([]grains.Event{reminderEvent{Type: "Reminded", ID: "c", At: at}}, "c", fired)
	if len(got) != 1 || got[0].Cancel || !got[0].At.Equal(at) {
		t.Fatalf("re-armed fired timer: %+v", got)
	}
}
