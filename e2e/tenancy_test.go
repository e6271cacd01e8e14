package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/platform"
)

// TestCrossTenant: a quote and an order of tenant demo do not exist for
// tenant other, on either door, for reads and commands alike, and their
// attempts change nothing. Tenant other is a tenant in its own right, with a
// catalog and the same roles, so a refusal can only come from tenancy.
func TestCrossTenant(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := platform.SeedCatalog(ctx, e.p.Store, "other", catalog.Demo(), time.Now()); err != nil {
			t.Fatalf("seed catalog of tenant other: %v", err)
		}
		demo := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		demoNATS := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.salesApprover())
		offering := firstOffering(t, demo)

		// A quote in progress, and a quote taken all the way to a completed
		// order.
		id := createQuote(t, demo, "")
		before := demo.do(t, grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": 1}, opts{}).expect(t, "addLine", 200)
		accepted := toApproved(t, demo, offering)
		acceptDocument(t, demo, accepted, renderDocument(t, demo, accepted))
		ord := awaitOrder(t, demo, accepted, order.StatusCompleted)
		if ord.ID != order.IDForQuote(accepted) {
			t.Fatalf("order of quote %s is %s, want %s", accepted, ord.ID, order.IDForQuote(accepted))
		}
		orderBefore := demo.do(t, grains.KindOrder, "get", ord.ID, nil, opts{}).expect(t, "get order", 200)
		orderKey := truth.Key{Tenant: string(platform.DemoTenant), Kind: string(grains.KindOrder), ID: ord.ID}
		trailBefore := len(auditTrail(t, e.p.Store, orderKey))

		// Both of demo's doors see the order, so that the other tenant's
		// empty answers below are about tenancy, not about the request.
		for _, d := range []door{demo, demoNATS} {
			d.do(t, grains.KindOrder, "get", ord.ID, nil, opts{}).expect(t, d.name()+" demo gets its order", 200)
			var l orderList
			d.do(t, grains.KindOrder, "list", accepted, nil, opts{}).expect(t, d.name()+" demo lists its orders", 200).decode(t, &l)
			if len(l.Items) != 1 || l.Items[0].ID != ord.ID {
				t.Fatalf("%s: demo lists %+v for quote %s, want order %s", d.name(), l.Items, accepted, ord.ID)
			}
		}

		otherTok := e.token("other", "sales", "approver")
		doors := []door{
			newHTTPDoor(e.p.HTTPAddr, otherTok),
			newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "other", otherTok),
		}
		for _, d := range doors {
			for _, c := range []struct {
				kind    grains.Kind
				command string
				id      string
				body    any
			}{
				{grains.KindQuote, "get", id, nil},
				{grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": 5}},
				{grains.KindQuote, "price", id, nil},
				{grains.KindQuote, "cancel", id, map[string]string{"reason": "not yours"}},
				{grains.KindQuote, "get", accepted, nil},
				{grains.KindOrder, "get", ord.ID, nil},
				{grains.KindOrder, "cancel", ord.ID, map[string]string{"reason": "not yours"}},
			} {
				what := d.name() + " " + string(c.kind) + " " + c.command + " of another tenant's " + string(c.kind)
				r := d.do(t, c.kind, c.command, c.id, c.body, opts{})
				r.expectProblem(t, what, 404, "not_found")
				if d.name() == "nats" && (r.Header["Status"] != "404" || r.Header["Grainline-Error-Code"] != "not_found") {
					t.Fatalf("%s: NATS reply headers %v, want Status 404 and code not_found", what, r.Header)
				}
			}
			// The order list of another tenant's quote is empty, not an
			// error, although that quote has an order.
			for _, q := range []string{accepted, id} {
				var l orderList
				d.do(t, grains.KindOrder, "list", q, nil, opts{}).expect(t, d.name()+" orders of another tenant's quote", 200).decode(t, &l)
				if len(l.Items) != 0 {
					t.Fatalf("%s: other tenant lists orders of quote %s: %+v", d.name(), q, l.Items)
				}
			}
		}
		// On NATS, a token of one tenant on another tenant's subject is
		// forbidden.
		wrongSubject := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, otherTok)
		wrongSubject.do(t, grains.KindQuote, "get", id, nil, opts{}).expectProblem(t, "NATS subject of another tenant", 403, "forbidden")
		wrongSubject.do(t, grains.KindOrder, "get", ord.ID, nil, opts{}).expectProblem(t, "NATS order subject of another tenant", 403, "forbidden")
		wrongSubject.do(t, grains.KindOrder, "cancel", ord.ID, map[string]string{"reason": "not yours"}, opts{}).
			expectProblem(t, "NATS order cancel on another tenant's subject", 403, "forbidden")

		// Nothing changed for demo.
		after := demo.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get quote", 200)
		var q quoteView
		after.decode(t, &q)
		if after.ETag != before.ETag || q.Status != quote.StatusInProgress || len(q.Lines) != 1 || q.Lines[0].Quantity != 1 {
			t.Fatalf("quote after the other tenant's attempts: etag %s (was %s) status %q lines %+v", after.ETag, before.ETag, q.Status, q.Lines)
		}
		orderAfter := demo.do(t, grains.KindOrder, "get", ord.ID, nil, opts{}).expect(t, "get order", 200)
		var o order.State
		orderAfter.decode(t, &o)
		if orderAfter.ETag == "" || orderAfter.ETag != orderBefore.ETag || o.Status != order.StatusCompleted || o.CancelledAt != nil {
			t.Fatalf("order after the other tenant's attempts: etag %s (was %s) status %q cancelled at %v", orderAfter.ETag, orderBefore.ETag, o.Status, o.CancelledAt)
		}
		if n := len(auditTrail(t, e.p.Store, orderKey)); n != trailBefore {
			t.Fatalf("order audit trail has %d records after the other tenant's attempts, was %d", n, trailBefore)
		}
		// Nor did the attempts create anything under tenant other.
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer lcancel()
		for _, k := range []truth.Key{
			{Tenant: "other", Kind: string(grains.KindOrder), ID: ord.ID},
			{Tenant: "other", Kind: string(grains.KindQuote), ID: accepted},
			{Tenant: "other", Kind: string(grains.KindQuote), ID: id},
		} {
			if _, err := e.p.Store.Load(lctx, k); !errors.Is(err, truth.ErrNotFound) {
				t.Fatalf("load %v after the other tenant's attempts: %v, want %v", k, err, truth.ErrNotFound)
			}
		}
		// The same cancel from the owning tenant reaches the order and is
		// refused by its state machine: the 404s above were tenancy.
		demo.do(t, grains.KindOrder, "cancel", ord.ID, map[string]string{"reason": "too late"}, opts{}).
			expectProblem(t, "demo cancels its completed order", 409, "invalid_transition")
	})
}
