package httpapi

import (
	"testing"

	"github.com/grainline/grainline/grains"
)

// TestQuoteRevision reads the current and a frozen revision from the
// quote's state; nothing reaches a grain.
func TestQuoteRevision(t *testing.T) {
	e := newEnv(t)
	putQuote(t, e, "demo", "q-rev",
		[2]string{"create", `{"customerId":"c-1","currency":"EUR"}`},
		[2]string{"addLine", `{"offeringId":"dia-1g","quantity":1}`},
		[2]string{"price", `{}`},
		[2]string{"submit", `{}`},
		[2]string{"approve", `{}`},
		[2]string{"setQuoteDiscount", `{"percent":"5"}`})

	r1 := expect(t, e.do("GET", "/v1/quotes/q-rev/revisions/1", ""), 200)
	if r1["quoteId"] != "q-rev" || r1["number"] != float64(1) || r1["current"] != false || r1["status"] != "approved" ||
		r1["supersededBy"] != "setQuoteDiscount" || r1["approvedBy"] != "alice" || r1["discount"] != nil {
		t.Fatalf("revision 1 = %v", r1)
	}
	if p, _ := r1["price"].(map[string]any); p == nil || p["hash"] == "" {
		t.Fatalf("revision 1 price = %v", r1["price"])
	}
	w := e.do("GET", "/v1/quotes/q-rev/revisions/2", "")
	r2 := expect(t, w, 200)
	if r2["number"] != float64(2) || r2["current"] != true || r2["status"] != "inProgress" || r2["price"] != nil {
		t.Fatalf("revision 2 = %v", r2)
	}
	if w.Header().Get("ETag") == "" {
		t.Error("no ETag")
	}

	expectProblem(t, e.do("GET", "/v1/quotes/q-rev/revisions/3", ""), 404, grains.CodeNotFound)
	expectProblem(t, e.do("GET", "/v1/quotes/q-rev/revisions/0", ""), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("GET", "/v1/quotes/q-rev/revisions/01", ""), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("GET", "/v1/quotes/q-rev/revisions/x", ""), 400, grains.CodeBadRequest)
	expectProblem(t, e.do("GET", "/v1/quotes/q-none/revisions/1", ""), 404, grains.CodeNotFound)
	putQuote(t, e, "acme", "q-acme", [2]string{"create", `{"customerId":"c-1","currency":"EUR"}`})
	expectProblem(t, e.do("GET", "/v1/quotes/q-acme/revisions/1", ""), 404, grains.CodeNotFound)
	expectProblem(t, e.do("GET", "/v1/quotes/q-rev/revisions/1", "", "Authorization: "), 401, grains.CodeUnauthenticated)
	if len(e.g.Sent()) != 0 {
		t.Fatalf("reading a revision sent commands: %+v", e.g.Sent())
	}
}

// TestCharacteristicsAndDocumentRoutes: the path's lineId is merged into
// setCharacteristics; attach-document sends attachDocument as is.
func TestCharacteristicsAndDocumentRoutes(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/v1/quotes/q-c/lines/2/characteristics", `{"characteristics":{"bandwidth":"1G"}}`)
	e.do("POST", "/v1/quotes/q-c/attach-document", `{"revision":1,"sha256":"ab","artifactId":"a"}`)
	sent := e.g.Sent()
	if len(sent) != 2 {
		t.Fatalf("sent %d commands, want 2: %+v", len(sent), sent)
	}
	want := []struct{ name, payload string }{
		{"setCharacteristics", `{"characteristics":{"bandwidth":"1G"},"lineId":"2"}`},
		{"attachDocument", `{"revision":1,"sha256":"ab","artifactId":"a"}`},
	}
	for i, w := range want {
		if sent[i].Name != w.name || string(sent[i].Payload) != w.payload || sent[i].ID != "q-c" {
			t.Errorf("command %d = %s %s on %s, want %s %s", i, sent[i].Name, sent[i].Payload, sent[i].ID, w.name, w.payload)
		}
	}
	expectProblem(t, e.do("POST", "/v1/quotes/q-c/lines/2/characteristics", `{"lineId":"3","characteristics":{}}`), 400, grains.CodeBadRequest)
	if len(e.g.Sent()) != 2 {
		t.Fatal("a rejected request reached a grain")
	}
}
