package httpapi

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/quote"
)

// putQuote stores a real quote state, built by the quote domain, in the
// fake grains.
func putQuote(t *testing.T, e *env, tenant grains.TenantID, id string, cmds ...[2]string) {
	t.Helper()
	genv := grains.Env{Tenant: tenant, ID: id, Actor: "alice", Roles: []string{"sales", "approver"},
		Now: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), Catalog: catalog.Demo()}
	var s quote.State
	for _, c := range cmds {
		cmd, err := quote.DecodeCommand(c[0], []byte(c[1]))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := quote.Decide(s, cmd, genv)
		if err != nil {
			t.Fatalf("%s: %v", c[0], err)
		}
		s = quote.Behavior.Fold(s, evs)
	}
	var m map[string]any
	b, _ := json.Marshal(s)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	e.g.Put(tenant, grains.KindQuote, id, m)
}

func TestPricePreviewChangesNothing(t *testing.T) {
	e := newEnv(t)
	putQuote(t, e, "demo", "q-prev",
		[2]string{"create", `{"customerId":"c-1","currency":"EUR"}`},
		[2]string{"addLine", `{"offeringId":"sdwan-edge-m","quantity":10}`},
		[2]string{"setQuoteDiscount", `{"percent":"10"}`})
	before := e.do("GET", "/v1/quotes/q-prev", "")
	expect(t, before, 200)

	// Concurrent previews all agree and none reaches a grain.
	var wg sync.WaitGroup
	bodies := make([]map[string]any, 8)
	for i := range bodies {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := e.do("POST", "/v1/quotes/q-prev/price-preview", "")
			if w.Code == 200 {
				_ = json.Unmarshal(w.Body.Bytes(), &bodies[i])
			}
		}(i)
	}
	wg.Wait()
	for i, b := range bodies {
		if b == nil || b["hash"] != bodies[0]["hash"] {
			t.Fatalf("preview %d = %v", i, b)
		}
	}
	m := bodies[0]
	// 10 x 1380.00 = 13800.00, less 10% = 12420.00
	if m["oneTimeTotal"] != "12420.00" || m["discountOneTime"] != "1380.00" || m["algorithm"] != "grainline.pricing.v2" || m["quoteId"] != "q-prev" {
		t.Fatalf("preview = %v", m)
	}
	if trace, _ := m["trace"].([]any); len(trace) != 5 {
		t.Fatalf("trace = %v", m["trace"])
	}
	if len(e.g.Sent()) != 0 {
		t.Fatalf("preview sent commands: %+v", e.g.Sent())
	}
	after := e.do("GET", "/v1/quotes/q-prev", "")
	if after.Header().Get("ETag") != before.Header().Get("ETag") || after.Body.String() != before.Body.String() {
		t.Fatalf("preview changed the quote: %s %s -> %s %s", before.Header().Get("ETag"), before.Body, after.Header().Get("ETag"), after.Body)
	}
	if rev, _ := m["revision"].(float64); `"`+jsonInt(rev)+`"` != before.Header().Get("ETag") {
		t.Fatalf("revision %v, ETag %s", m["revision"], before.Header().Get("ETag"))
	}

	// Failures: another tenant's quote, no lines, bad body, no token.
	putQuote(t, e, "acme", "q-acme", [2]string{"create", `{"customerId":"c-1","currency":"EUR"}`},
		[2]string{"addLine", `{"offeringId":"dia-1g","quantity":1}`})
	expectProblem(t, e.do("POST", "/v1/quotes/q-acme/price-preview", ""), 404, grains.CodeNotFound)
	putQuote(t, e, "demo", "q-empty", [2]string{"create", `{"customerId":"c-1","currency":"EUR"}`})
	expectProblem(t, e.do("POST", "/v1/quotes/q-empty/price-preview", ""), 422, grains.CodeValidation)
	expectProblem(t, e.do("POST", "/v1/quotes/q-prev/price-preview", "[1]"), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("POST", "/v1/quotes/q-prev/price-preview", "", "Authorization: "), 401, grains.CodeUnauthenticated)
	if len(e.g.Sent()) != 0 {
		t.Fatal("a failed preview reached a grain")
	}
}

func jsonInt(f float64) string { b, _ := json.Marshal(int64(f)); return string(b) }

func TestDiscountRoutes(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/v1/quotes/q-d/lines/3/discount", `{"percent":"12.5"}`)
	e.do("POST", "/v1/quotes/q-d/lines/3/discount", `{"lineId":"3","amount":10,"charge":"monthly"}`)
	e.do("POST", "/v1/quotes/q-d/discount", `{"amount":"100.00"}`)
	e.do("DELETE", "/v1/quotes/q-d/discount", "")
	sent := e.g.Sent()
	if len(sent) != 4 {
		t.Fatalf("sent %d commands, want 4: %+v", len(sent), sent)
	}
	want := []struct{ name, payload string }{
		{"setLineDiscount", `{"lineId":"3","percent":"12.5"}`},
		{"setLineDiscount", `{"amount":10,"charge":"monthly","lineId":"3"}`},
		{"setQuoteDiscount", `{"amount":"100.00"}`},
		{"clearQuoteDiscount", `{}`},
	}
	for i, w := range want {
		if sent[i].Name != w.name || string(sent[i].Payload) != w.payload || sent[i].ID != "q-d" {
			t.Errorf("command %d = %s %s on %s, want %s %s", i, sent[i].Name, sent[i].Payload, sent[i].ID, w.name, w.payload)
		}
	}
	expectProblem(t, e.do("POST", "/v1/quotes/q-d/lines/3/discount", `{"lineId":"4","percent":"1"}`), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("POST", "/v1/quotes/q-d/lines/3/discount", `[]`), 400, grains.CodeBadRequest)
	if len(e.g.Sent()) != 4 {
		t.Fatal("a rejected discount request reached a grain")
	}
}
