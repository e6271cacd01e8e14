package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/platform"
)

// TestCrossTenant: a quote of tenant demo does not exist for tenant other,
// on either door, for reads and commands alike, and their attempts change
// nothing. Tenant other is a tenant in its own right, with a catalog.
func TestCrossTenant(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := platform.SeedCatalog(ctx, e.p.Store, "other", catalog.Demo(), time.Now()); err != nil {
			t.Fatalf("seed catalog of tenant other: %v", err)
		}
		demo := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		offering := firstOffering(t, demo)
		id := createQuote(t, demo, "")
		before := demo.do(t, grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": 1}, opts{}).expect(t, "addLine", 200)

		otherTok := e.token("other", "sales", "approver")
		doors := []door{
			newHTTPDoor(e.p.HTTPAddr, otherTok),
			newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "other", otherTok),
		}
		for _, d := range doors {
			for _, c := range []struct {
				command string
				body    any
			}{
				{"get", nil},
				{"addLine", map[string]any{"offeringId": offering, "quantity": 5}},
				{"price", nil},
				{"cancel", map[string]string{"reason": "not yours"}},
			} {
				r := d.do(t, grains.KindQuote, c.command, id, c.body, opts{})
				r.expectProblem(t, d.name()+" "+c.command+" of another tenant's quote", 404, "not_found")
				if d.name() == "nats" && r.Header["Status"] != "404" {
					t.Fatalf("NATS reply Status header %q, want 404", r.Header["Status"])
				}
			}
			// The order list of another tenant's quote is empty, not an error.
			var l orderList
			d.do(t, grains.KindOrder, "list", id, nil, opts{}).expect(t, d.name()+" orders of another tenant's quote", 200).decode(t, &l)
			if len(l.Items) != 0 {
				t.Fatalf("%s: other tenant lists orders %+v", d.name(), l.Items)
			}
		}
		// On NATS, a token of one tenant on another tenant's subject is
		// forbidden.
		wrongSubject := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "demo", otherTok)
		wrongSubject.do(t, grains.KindQuote, "get", id, nil, opts{}).expectProblem(t, "NATS subject of another tenant", 403, "forbidden")

		// Nothing changed for demo.
		after := demo.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get quote", 200)
		var q quoteView
		after.decode(t, &q)
		if after.ETag != before.ETag || q.Status != quote.StatusInProgress || len(q.Lines) != 1 || q.Lines[0].Quantity != 1 {
			t.Fatalf("quote after the other tenant's attempts: etag %s (was %s) status %q lines %+v", after.ETag, before.ETag, q.Status, q.Lines)
		}
	})
}
