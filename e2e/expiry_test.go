package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/platform"
)

// expiryTimeout bounds the wait for a due expire timer to fire: the timer
// service polls every second and may back off once.
const expiryTimeout = 10 * time.Second

// createExpiring creates a quote through d valid until `until`.
func createExpiring(t *testing.T, d door, until time.Time) quoteView {
	t.Helper()
	r := d.do(t, grains.KindQuote, "create", "", map[string]string{
		"customerId": "cust-exp", "currency": "EUR", "validUntil": until.UTC().Format(time.RFC3339Nano),
	}, opts{}).expect(t, "create quote", 201)
	var q quoteView
	r.decode(t, &q)
	if q.ID == "" || !q.ValidUntil.Equal(until.Truncate(time.Microsecond)) {
		t.Fatalf("created quote %q validUntil %v, want %v", q.ID, q.ValidUntil, until)
	}
	return q
}

// awaitStatus polls GET until the quote has status want.
func awaitStatus(t *testing.T, d door, id string, want quote.Status, timeout time.Duration) quoteView {
	t.Helper()
	var q quoteView
	eventually(t, timeout, func() (bool, string) {
		r := d.do(t, grains.KindQuote, "get", id, nil, opts{})
		if r.Status != 200 {
			return false, fmt.Sprintf("get quote %s: status %d: %s", id, r.Status, r.Body)
		}
		r.decode(t, &q)
		return q.Status == want, fmt.Sprintf("quote %s is %q, want %q", id, q.Status, want)
	})
	return q
}

// An approved quote expires when its timer fires; accepting it afterwards
// is 409 quote_expired. Accepting a quote past validUntil whose timer may not have fired
// yet is 409 quote_expired.
func TestQuoteExpires(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		offering := firstOffering(t, d)

		until := time.Now().Add(3 * time.Second)
		q := createExpiring(t, d, until)
		d.do(t, grains.KindQuote, "addLine", q.ID, map[string]any{"offeringId": offering, "quantity": 1}, opts{}).expect(t, "addLine", 200)
		for _, c := range []string{"price", "submit", "approve"} {
			d.do(t, grains.KindQuote, c, q.ID, nil, opts{}).expect(t, c, 200)
		}
		// expire is the timer's command, not a client's: there is no
		// endpoint for it (the grain refuses it from any role but system).
		d.do(t, grains.KindQuote, "expire", q.ID, nil, opts{}).expectProblem(t, "expire by a client", 404, "not_found")

		got := awaitStatus(t, d, q.ID, quote.StatusExpired, time.Until(until)+expiryTimeout)
		mustf(t, got.ExpiredAt != nil && !got.ExpiredAt.Before(until.Truncate(time.Microsecond)),
			"expiredAt %v before validUntil %v", got.ExpiredAt, until)
		d.do(t, grains.KindQuote, "accept", q.ID, nil, opts{}).expectProblem(t, "accept after expiry", 409, "quote_expired")

		// A quote past validUntil whose timer has not fired yet is refused
		// with quote_expired too: validUntil one second ahead, and accept
		// tried as soon as it passed, racing the timer.
		q2 := createExpiring(t, d, time.Now().Add(time.Second))
		d.do(t, grains.KindQuote, "addLine", q2.ID, map[string]any{"offeringId": offering, "quantity": 1}, opts{}).expect(t, "addLine", 200)
		for _, c := range []string{"price", "submit", "approve"} {
			d.do(t, grains.KindQuote, c, q2.ID, nil, opts{}).expect(t, c, 200)
		}
		time.Sleep(time.Until(q2.ValidUntil)) // the clock must pass validUntil; nothing to poll
		d.do(t, grains.KindQuote, "accept", q2.ID, nil, opts{}).expectProblem(t, "accept past validUntil", 409, "quote_expired")
		awaitStatus(t, d, q2.ID, quote.StatusExpired, expiryTimeout)
	})
}

// TestQuoteExpiresAcrossRestart closes the embedded platform before the
// quote's timer is due and starts a new one on the same data dir after it
// is due: the timer was committed with the quote and fires on start.
func TestQuoteExpiresAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *platform.Platform {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := platform.Start(ctx, platform.Config{
			DataDir: dir, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			WorkerLatency: 20 * time.Millisecond, NoStreams: true, Log: testLogger(t),
		})
		if err != nil {
			t.Fatalf("start platform: %v", err)
		}
		return p
	}
	stop := func(p *platform.Platform) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Fatalf("close platform: %v", err)
		}
	}
	door := func(p *platform.Platform) *httpDoor {
		tok, err := p.Token(platform.DemoTenant, "e2e-demo", []string{"sales", "approver"}, time.Hour)
		if err != nil {
			t.Fatalf("mint token: %v", err)
		}
		return newHTTPDoor(p.HTTPAddr, tok)
	}

	p := start()
	until := time.Now().Add(4 * time.Second)
	q := createExpiring(t, door(p), until)
	// A second quote with the default validity must survive the restart.
	other := createQuote(t, door(p), "")
	stop(p)
	if time.Now().After(until) {
		t.Fatalf("the platform closed after the quote was due (%v); the test proves nothing", until)
	}
	time.Sleep(time.Until(until) + 200*time.Millisecond) // no platform runs: nothing to poll

	p = start()
	defer stop(p)
	d := door(p)
	awaitStatus(t, d, q.ID, quote.StatusExpired, expiryTimeout)
	r := d.do(t, grains.KindQuote, "get", other, nil, opts{}).expect(t, "get other", 200)
	var o quoteView
	r.decode(t, &o)
	mustf(t, o.Status == quote.StatusInProgress, "quote %s with default validity is %q after restart", other, o.Status)
}
