package quote_test

import (
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// QuoteCreated sets the "expire" timer at validUntil, to the microsecond;
// QuoteExpired and a Created from before expiry set none.
func TestCreatedSetsExpireTimer(t *testing.T) {
	until := t0.Add(72*time.Hour + 1500*time.Nanosecond)
	c := mustDecode(t, "create", `{"customerId":"c-1","currency":"EUR","validUntil":"`+until.Format(time.RFC3339Nano)+`"}`)
	evs, err := quote.Decide(quote.State{}, c, env("sales"))
	if err != nil || len(evs) != 1 {
		t.Fatalf("create: %v %v", evs, err)
	}
	te, ok := evs[0].(grains.TimerEffects)
	if !ok {
		t.Fatalf("%T does not set timers", evs[0])
	}
	set, cancel := te.Timers()
	want := grains.Timer{ID: quote.TimerExpire, At: until.Truncate(time.Microsecond), Command: quote.CmdExpire}
	if len(set) != 1 || len(cancel) != 0 || set[0].ID != want.ID || !set[0].At.Equal(want.At) || set[0].Command != want.Command || len(set[0].Payload) != 0 {
		t.Fatalf("timers %+v cancel %v, want %+v", set, cancel, want)
	}
	if _, err := quote.DecodeCommand(set[0].Command, []byte(`{}`)); err != nil {
		t.Fatalf("the timer's command does not decode: %v", err)
	}
	if set, cancel := (quote.Created{QuoteID: "q-old"}).Timers(); set != nil || cancel != nil {
		t.Fatalf("a Created without validUntil sets %v cancels %v", set, cancel)
	}
	// The event round-trips with its validUntil, so a replayed quote keeps it.
	ev, err := quote.DecodeEvent(quote.EvCreated, []byte(`{"quoteId":"q-1","validUntil":"2026-02-01T10:00:00Z"}`))
	if err != nil || !ev.(quote.Created).ValidUntil.Equal(time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("decode: %+v %v", ev, err)
	}
}
