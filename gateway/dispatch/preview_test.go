package dispatch

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
)

// The NATS door sends pricePreview through Do like any command; Do answers
// it from the read side without sending anything to a grain.
func TestPricePreviewThroughDo(t *testing.T) {
	g := fakegrains.New()
	d, err := New(Deps{Sender: g, Reader: g})
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	_ = json.Unmarshal([]byte(`{"id":"q-1","tenant":"demo","status":"approved","currency":"EUR",
		"lines":[{"lineId":"1","offeringId":"install-onsite","name":"x","quantity":3,"unitOneTime":"380.00","unitMonthly":"0.00","oneTimeTotal":"1140.00","monthlyTotal":"0.00"}],
		"lineSeq":1,"discount":{"amount":"40.00","charge":"oneTime"}}`), &state)
	g.Put("demo", grains.KindQuote, "q-1", state)
	ctx := context.Background()
	sales := auth.Principal{Subject: "alice", Tenant: "demo", Roles: []string{"sales"}}
	r := d.Do(ctx, Request{Principal: sales, Kind: grains.KindQuote, ID: "q-1", Command: CommandPricePreview})
	if r.Status != 200 || r.ETag != `"1"` {
		t.Fatalf("preview = %d %s", r.Status, r.Body)
	}
	var body PreviewBody
	if err := json.Unmarshal(r.Body, &body); err != nil || body.OneTimeTotal != "1100.00" || body.Revision != 1 || len(body.Hash) != 64 {
		t.Fatalf("body = %s (%v)", r.Body, err)
	}
	for _, tc := range []struct {
		p    auth.Principal
		id   string
		code grains.Code
	}{
		{auth.Principal{Subject: "o", Tenant: "demo", Roles: []string{"ops"}}, "q-1", grains.CodeForbidden},
		{auth.Principal{Subject: "a", Tenant: "acme", Roles: []string{"sales"}}, "q-1", grains.CodeNotFound},
		{sales, "q-none", grains.CodeNotFound},
		{sales, "bad id!", grains.CodeBadRequest},
	} {
		if r := d.Do(ctx, Request{Principal: tc.p, Kind: grains.KindQuote, ID: tc.id, Command: CommandPricePreview}); r.Code != tc.code {
			t.Errorf("%+v %s: %d %s, want %s", tc.p, tc.id, r.Status, r.Body, tc.code)
		}
	}
	if len(g.Sent()) != 0 {
		t.Fatalf("preview sent %+v", g.Sent())
	}
	// pricePreview is a quote command only.
	if r := d.Do(ctx, Request{Principal: sales, Kind: grains.KindOrder, ID: "o-1", Command: CommandPricePreview}); r.Code != grains.CodeNotFound {
		t.Fatalf("order preview = %d", r.Status)
	}
}
