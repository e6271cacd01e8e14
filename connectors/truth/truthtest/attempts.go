package truthtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

func runAttempts(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"StartEndList", testAttemptStartEnd},
		{"Invalid", testAttemptInvalid},
		{"ConcurrentStart", testAttemptConcurrent},
		{"Reopen", testAttemptReopen},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func attemptStore(t testing.TB, s truth.Store) truth.AttemptStore {
	t.Helper()
	as, ok := s.(truth.AttemptStore)
	if !ok {
		t.Fatalf("%T does not implement truth.AttemptStore", s)
	}
	return as
}

func attempt(tenant, taskID string, n int, at time.Time) truth.Attempt {
	return truth.Attempt{Tenant: tenant, TaskID: taskID, N: n, OrderID: "o-" + taskID, System: "inventory",
		Operation: "reserve", ExternalKey: "grainline:" + tenant + ":" + taskID, StartedAt: at}
}

func fmtAttempts(as []truth.Attempt) string {
	s := ""
	for _, a := range as {
		s += fmt.Sprintf("[%s/%s #%d %s %s %q %s..%s] ", a.Tenant, a.TaskID, a.N, a.Operation, a.Outcome, a.Detail,
			a.StartedAt.Format(time.RFC3339Nano), a.EndedAt.Format(time.RFC3339Nano))
	}
	return s
}

func testAttemptStartEnd(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t, h.NewLocation(t))
	defer s.Close()
	as := attemptStore(t, s)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

	if got, err := as.Attempts(ctx, "acme", "t-1"); err != nil || len(got) != 0 {
		t.Fatalf("attempts of an unknown task = %s, %v; want none", fmtAttempts(got), err)
	}
	a1 := attempt("acme", "t-1", 1, t0)
	a1.Outcome = truth.OutcomeSucceeded // ignored: a start is always started
	if err := as.StartAttempt(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if err := as.StartAttempt(ctx, attempt("acme", "t-1", 1, t0)); !errors.Is(err, truth.ErrAttemptExists) {
		t.Fatalf("second start of #1 = %v, want ErrAttemptExists", err)
	}
	if err := as.EndAttempt(ctx, "acme", "t-1", 1, truth.OutcomeUnknown, "deadline exceeded", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	a2 := attempt("acme", "t-1", 2, t0.Add(2*time.Second))
	a2.Operation = "query"
	if err := as.StartAttempt(ctx, a2); err != nil {
		t.Fatal(err)
	}
	// Another tenant's task of the same id, and another task, stay apart.
	if err := as.StartAttempt(ctx, attempt("other", "t-1", 1, t0)); err != nil {
		t.Fatal(err)
	}
	if err := as.StartAttempt(ctx, attempt("acme", "t-10", 1, t0)); err != nil {
		t.Fatal(err)
	}
	if err := as.EndAttempt(ctx, "acme", "t-1", 3, truth.OutcomeSucceeded, "", t0); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("end of an attempt never started = %v, want ErrNotFound", err)
	}

	got, err := as.Attempts(ctx, "acme", "t-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []truth.Attempt{
		{Tenant: "acme", TaskID: "t-1", N: 1, OrderID: "o-t-1", System: "inventory", Operation: "reserve",
			ExternalKey: "grainline:acme:t-1", Outcome: truth.OutcomeUnknown, Detail: "deadline exceeded",
			StartedAt: truth.TimerTime(t0), EndedAt: truth.TimerTime(t0.Add(time.Second))},
		{Tenant: "acme", TaskID: "t-1", N: 2, OrderID: "o-t-1", System: "inventory", Operation: "query",
			ExternalKey: "grainline:acme:t-1", Outcome: truth.OutcomeStarted, StartedAt: truth.TimerTime(t0.Add(2 * time.Second))},
	}
	if !sameAttempts(got, want) {
		t.Fatalf("attempts:\n got %s\nwant %s", fmtAttempts(got), fmtAttempts(want))
	}
	// An end may be replaced (a worker that recorded unknown learns more).
	if err := as.EndAttempt(ctx, "acme", "t-1", 2, truth.OutcomeSucceeded, "inventory-1", t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	got, _ = as.Attempts(ctx, "acme", "t-1")
	if len(got) != 2 || got[1].Outcome != truth.OutcomeSucceeded || got[1].Detail != "inventory-1" ||
		!got[1].EndedAt.Equal(truth.TimerTime(t0.Add(3*time.Second))) {
		t.Fatalf("after ending #2: %s", fmtAttempts(got))
	}
	if got, _ := as.Attempts(ctx, "other", "t-1"); len(got) != 1 || got[0].Tenant != "other" {
		t.Fatalf("other tenant's attempts = %s", fmtAttempts(got))
	}
}

func sameAttempts(got, want []truth.Attempt) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Tenant != w.Tenant || g.TaskID != w.TaskID || g.N != w.N || g.OrderID != w.OrderID || g.System != w.System ||
			g.Operation != w.Operation || g.ExternalKey != w.ExternalKey || g.Outcome != w.Outcome || g.Detail != w.Detail ||
			!g.StartedAt.Equal(w.StartedAt) || g.EndedAt.IsZero() != w.EndedAt.IsZero() || !g.EndedAt.Equal(w.EndedAt) {
			return false
		}
	}
	return true
}

func testAttemptInvalid(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t, h.NewLocation(t))
	defer s.Close()
	as := attemptStore(t, s)
	now := time.Now()
	for name, a := range map[string]truth.Attempt{
		"no tenant":   {TaskID: "t", N: 1, System: "x", Operation: "y", ExternalKey: "k", StartedAt: now},
		"no task":     {Tenant: "acme", N: 1, System: "x", Operation: "y", ExternalKey: "k", StartedAt: now},
		"zero n":      {Tenant: "acme", TaskID: "t", System: "x", Operation: "y", ExternalKey: "k", StartedAt: now},
		"no system":   {Tenant: "acme", TaskID: "t", N: 1, Operation: "y", ExternalKey: "k", StartedAt: now},
		"no key":      {Tenant: "acme", TaskID: "t", N: 1, System: "x", Operation: "y", StartedAt: now},
		"no start at": {Tenant: "acme", TaskID: "t", N: 1, System: "x", Operation: "y", ExternalKey: "k"},
	} {
		if err := as.StartAttempt(ctx, a); !errors.Is(err, truth.ErrInvalidAttempt) {
			t.Errorf("%s: start = %v, want ErrInvalidAttempt", name, err)
		}
	}
	if err := as.StartAttempt(ctx, attempt("acme", "t", 1, now)); err != nil {
		t.Fatal(err)
	}
	for _, o := range []truth.AttemptOutcome{truth.OutcomeStarted, "", "maybe"} {
		if err := as.EndAttempt(ctx, "acme", "t", 1, o, "", now); !errors.Is(err, truth.ErrInvalidAttempt) {
			t.Errorf("end with %q = %v, want ErrInvalidAttempt", o, err)
		}
	}
	if got, _ := as.Attempts(ctx, "acme", "t"); len(got) != 1 || got[0].Outcome != truth.OutcomeStarted {
		t.Fatalf("invalid ends changed the record: %s", fmtAttempts(got))
	}
}

// testAttemptConcurrent: workers racing for the same attempt number get it
// once; the others see ErrAttemptExists.
func testAttemptConcurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Open(t, h.NewLocation(t))
	defer s.Close()
	as := attemptStore(t, s)
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = as.StartAttempt(ctx, attempt("acme", "t-race", 1, time.Now()))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, truth.ErrAttemptExists):
			t.Errorf("racer: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racers started attempt #1, want 1", won)
	}
}

func testAttemptReopen(t *testing.T, h Harness) {
	ctx := context.Background()
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	at := time.Now()
	if err := attemptStore(t, s).StartAttempt(ctx, attempt("acme", "t-r", 1, at)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.Open(t, loc)
	defer s.Close()
	got, err := attemptStore(t, s).Attempts(ctx, "acme", "t-r")
	if err != nil || len(got) != 1 || got[0].Outcome != truth.OutcomeStarted || !got[0].StartedAt.Equal(truth.TimerTime(at)) {
		t.Fatalf("after reopen: %s, %v", fmtAttempts(got), err)
	}
}
