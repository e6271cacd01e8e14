package quote_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFrozenRevisionIsImmutable freezes an approved revision with a
// document, then changes the new revision every way there is, through
// commands and by writing into the new state's slices and maps directly:
// the frozen revision stays byte for byte the same.
func TestFrozenRevisionIsImmutable(t *testing.T) {
	s := states(t)["approved"]
	s = step(t, s, "setLineDiscount", `{"lineId":"1","percent":"3"}`) // revision 2
	s = step(t, s, "price", `{}`)
	s = step(t, s, "submit", `{}`)
	s = step(t, s, "approve", `{}`)
	s = step(t, s, "attachDocument", `{"revision":2,"sha256":"`+strings.Repeat("ab", 32)+`","artifactId":"a-1"}`)
	if s.Revision != 2 || s.Document == nil || len(s.Revisions) != 1 {
		t.Fatalf("setup: revision %d, document %v, %d frozen", s.Revision, s.Document, len(s.Revisions))
	}
	s = step(t, s, "setQuoteDiscount", `{"percent":"2"}`) // revision 3
	if s.Revision != 3 || len(s.Revisions) != 2 || s.Document != nil || s.Price != nil || s.Approvals != nil {
		t.Fatalf("after revising: %+v", s)
	}
	frozen := mustJSON(t, s.Revisions[1])
	first := mustJSON(t, s.Revisions[0])
	want, ok := quote.RevisionOf(s, 2)
	if !ok || mustJSON(t, want) != frozen {
		t.Fatalf("RevisionOf(2) = %v %s, want %s", ok, mustJSON(t, want), frozen)
	}
	var r2 quote.Revision
	if err := json.Unmarshal([]byte(frozen), &r2); err != nil {
		t.Fatal(err)
	}
	if r2.Number != 2 || r2.Status != quote.StatusApproved || r2.Price == nil || len(r2.Approvals) != 1 ||
		r2.Document == nil || r2.Document.Revision != 2 || r2.Terms["1"].Discount == nil || r2.Terms["1"].Discount.Percent != "3" ||
		r2.Discount != nil || r2.SupersededBy != "setQuoteDiscount" || r2.Current {
		t.Fatalf("frozen revision 2: %s", frozen)
	}

	// Commands on revision 3 and beyond.
	s = step(t, s, "setLineDiscount", `{"lineId":"1","percent":"7"}`)
	s = step(t, s, "addLine", `{"offeringId":"dia-1g","quantity":1}`)
	s = step(t, s, "price", `{}`)
	s = step(t, s, "submit", `{}`)
	s = step(t, s, "approve", `{}`)
	s = step(t, s, "removeLine", `{"lineId":"1"}`) // revision 4
	s = step(t, s, "clearQuoteDiscount", `{}`)
	// Writes into the new state's own slices and maps.
	if len(s.Lines) > 0 {
		s.Lines[0].Quantity = 999
	}
	for k, v := range s.Terms {
		v.ListOneTime = "0.00"
		s.Terms[k] = v
	}
	s.Terms["1"] = quote.LineTerms{ListOneTime: "1.00"}
	for i := range s.Revisions[2].Lines {
		s.Revisions[2].Lines[i].Quantity = 777
	}
	if got := mustJSON(t, s.Revisions[1]); got != frozen {
		t.Fatalf("frozen revision 2 changed:\nwas %s\nnow %s", frozen, got)
	}
	if got := mustJSON(t, s.Revisions[0]); got != first {
		t.Fatalf("frozen revision 1 changed:\nwas %s\nnow %s", first, got)
	}
	if s.Revision != 4 || len(s.Revisions) != 3 || s.Revisions[2].Number != 3 || s.Revisions[2].Status != quote.StatusApproved {
		t.Fatalf("revision %d, frozen %d", s.Revision, len(s.Revisions))
	}
}

// TestReviseSharesNothingWithThePreviousState folds a revision and then
// writes into the old state: the new state's frozen revision must not see it.
func TestReviseSharesNothingWithThePreviousState(t *testing.T) {
	old := step(t, states(t)["approved"], "setLineDiscount", `{"lineId":"1","percent":"3"}`)
	old = step(t, step(t, step(t, old, "price", `{}`), "submit", `{}`), "approve", `{}`)
	next := step(t, old, "addLine", `{"offeringId":"dia-1g","quantity":1}`)
	frozen := mustJSON(t, next.Revisions[1])
	old.Lines[0].Quantity = 555
	old.Approvals[0].ApprovedBy = "mallory"
	old.Price.Trace[0].What = "forged"
	old.Terms["1"].Discount.Percent = "99"
	if got := mustJSON(t, next.Revisions[1]); got != frozen {
		t.Fatalf("frozen revision aliases the old state:\nwas %s\nnow %s", frozen, got)
	}
}

func TestRevisionOf(t *testing.T) {
	s := step(t, states(t)["pending"], "addLine", `{"offeringId":"dia-1g","quantity":1}`)
	for _, tt := range []struct {
		n       int
		ok      bool
		current bool
		lines   int
	}{{0, false, false, 0}, {1, true, false, 1}, {2, true, true, 2}, {3, false, false, 0}, {-1, false, false, 0}} {
		r, ok := quote.RevisionOf(s, tt.n)
		if ok != tt.ok || (ok && (r.Number != tt.n || r.Current != tt.current || len(r.Lines) != tt.lines)) {
			t.Errorf("RevisionOf(%d) = %+v %v", tt.n, r, ok)
		}
	}
	if r, ok := quote.RevisionOf(s, 1); !ok || r.Status != quote.StatusPending || r.Price == nil || r.RequiredLevel != 1 {
		t.Errorf("revision 1 = %+v", r)
	}
	if _, ok := quote.RevisionOf(quote.State{}, 1); ok {
		t.Error("a quote that does not exist has revision 1")
	}
	// A snapshot from before revisions existed is at revision 1.
	legacy := states(t)["priced"]
	legacy.Revision = 0
	if r, ok := quote.RevisionOf(legacy, 1); !ok || !r.Current {
		t.Errorf("legacy revision 1 = %+v %v", r, ok)
	}
}

// TestApproveNamingTheCurrentPriceHash approves with the exact revision and
// hash the approver saw, and is refused once a change superseded them.
func TestApproveNamingTheCurrentPriceHash(t *testing.T) {
	p := states(t)["pending"]
	ok := `{"revision":1,"priceHash":"` + p.Price.Hash + `"}`
	approved := step(t, p, "approve", ok)
	if approved.Approvals[0].PriceHash != p.Price.Hash || approved.Approvals[0].Revision != 1 {
		t.Fatalf("approval %+v", approved.Approvals[0])
	}
	// The quote moved on to revision 2, priced at another hash.
	moved := step(t, step(t, step(t, p, "setQuoteDiscount", `{"percent":"1"}`), "price", `{}`), "submit", `{}`)
	for _, payload := range []string{ok, `{"priceHash":"` + p.Price.Hash + `"}`, `{"revision":1}`, `{"revision":2,"priceHash":"` + p.Price.Hash + `"}`} {
		_, err := quote.Decide(moved, mustDecode(t, "approve", payload), env("approver"))
		if grains.CodeOf(err) != grains.CodeStaleRevision {
			t.Errorf("approve %s on revision 2: %v, want stale_revision", payload, err)
		}
	}
	step(t, moved, "approve", `{"revision":2,"priceHash":"`+moved.Price.Hash+`"}`)
}

// TestLegacyAcceptedEvent folds a QuoteAccepted written before acceptance
// evidence existed: the order still decodes it, and the quote records the
// acceptance at its revision.
func TestLegacyAcceptedEvent(t *testing.T) {
	s := states(t)["approved"]
	raw := `{"quoteId":"q-1","orderId":"o-1","customerId":"c-1","customerName":"","currency":"EUR","lines":[],"oneTimeTotal":"1.00","monthlyTotal":"0.00","priceHash":"h","acceptedBy":"alice","acceptedAt":"2026-01-02T10:00:00Z"}`
	ev, err := quote.DecodeEvent(quote.EvAccepted, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	got := quote.Apply(s, ev)
	if got.Acceptance == nil || got.Acceptance.Revision != 1 || got.Acceptance.Channel != "" || got.Acceptance.PriceHash != "h" {
		t.Fatalf("acceptance %+v", got.Acceptance)
	}
}
