package documents_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/documents"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

var update = flag.Bool("update", false, "rewrite testdata/quote.pdf from the current renderer")

func ptr[T any](v T) *T { return &v }

var (
	created  = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	priced   = time.Date(2025, 3, 1, 9, 5, 0, 0, time.UTC)
	approved = time.Date(2025, 3, 1, 10, 30, 15, 987654321, time.UTC)
)

// approvedQuote is an approved quote at revision 2 with a line discount, a
// quote discount and two approval levels.
func approvedQuote() quote.State {
	return quote.State{
		ID: "Q-7F3A", Tenant: "acme", Status: quote.StatusApproved,
		CustomerID: "C-1", CustomerName: "Müller & Söhne GmbH, Zürich", Currency: "EUR", CatalogVersion: 3,
		Revision: 2, TermMonths: 24, CustomerSegment: "enterprise",
		Lines: []grains.Line{
			{LineID: "L1", OfferingID: "fiber-100", Name: "Fiber 100 Mbit/s business access", Quantity: 2,
				UnitOneTime: "99.00", UnitMonthly: "49.90", OneTimeTotal: "178.20", MonthlyTotal: "89.82"},
			{LineID: "L3", OfferingID: "router", Name: "Managed router", Quantity: 1,
				UnitOneTime: "250.00", UnitMonthly: "0.00", OneTimeTotal: "250.00", MonthlyTotal: "0.00"},
		},
		LineSeq: 3,
		Terms: map[string]quote.LineTerms{
			"L1": {ListOneTime: "99.00", ListMonthly: "49.90", Discount: &quote.Discount{Percent: "10"}},
			"L3": {ListOneTime: "250.00", ListMonthly: "0.00"},
		},
		Discount: &quote.Discount{Amount: "28.20", Charge: "oneTime"},
		Price: &quote.PriceSummary{
			SubtotalOneTime: "428.20", SubtotalMonthly: "89.82", DiscountOneTime: "28.20", DiscountMonthly: "0.00",
			OneTimeTotal: "400.00", MonthlyTotal: "89.82", Algorithm: "grainline.pricing.v2",
			Hash: "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e", PricedAt: priced,
		},
		SubmittedBy: "user:sam", SubmittedAt: ptr(priced.Add(time.Minute)),
		ApprovedBy: "user:carla", ApprovedAt: ptr(approved), ApprovedPriceHash: "9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e",
		PolicyVersion: 4, RequiredLevel: 2,
		Approvals: []quote.Approval{
			{Level: 1, ApprovedBy: "user:alex", ApprovedAt: approved.Add(-time.Hour), PolicyVersion: 4, Revision: 2},
			{Level: 2, ApprovedBy: "user:carla", ApprovedAt: approved, PolicyVersion: 4, Revision: 2},
		},
		ValidUntil: time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC),
		CreatedBy:  "user:sam", CreatedAt: created,
	}
}

// stateJSON marshals s and gives line i the characteristics chars[i], as a
// configured line carries them.
func stateJSON(t testing.TB, s quote.State, chars map[int]map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(chars) == 0 {
		return b
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	lines := m["lines"].([]any)
	for i, c := range chars {
		lines[i].(map[string]any)["characteristics"] = c
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var fiberChars = map[int]map[string]any{0: {"speedMbps": 100, "staticIp": true, "technology": "FTTH"}}

func render(t testing.TB, seller string, state []byte) documents.Document {
	t.Helper()
	d, err := documents.Render(documents.Input{Seller: seller, State: state})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return d
}

func TestRenderIsDeterministic(t *testing.T) {
	state := stateJSON(t, approvedQuote(), fiberChars)
	first := render(t, "Acme Telecom", state)
	if first.SHA256 != truth.ArtifactDigest(first.Bytes) || first.MediaType != "application/pdf" ||
		first.QuoteID != "Q-7F3A" || first.Revision != 2 {
		t.Fatalf("document %+v does not describe its bytes", first)
	}
	if again := render(t, "Acme Telecom", state); !bytes.Equal(again.Bytes, first.Bytes) {
		t.Fatalf("second render differs: %s vs %s", again.SHA256, first.SHA256)
	}
	// Concurrent renders share nothing that changes their output.
	const n = 8
	var wg sync.WaitGroup
	got := make([]documents.Document, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = documents.Render(documents.Input{Seller: "Acme Telecom", State: state})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i].SHA256 != first.SHA256 || !bytes.Equal(got[i].Bytes, first.Bytes) {
			t.Fatalf("goroutine %d: %s, %v; want %s", i, got[i].SHA256, errs[i], first.SHA256)
		}
	}
	// The order of map keys in the input does not matter: re-encoding the
	// state (Go sorts map keys) gives the same document.
	var m map[string]any
	if err := json.Unmarshal(state, &m); err != nil {
		t.Fatal(err)
	}
	re, _ := json.Marshal(m)
	if d := render(t, "Acme Telecom", re); d.SHA256 != first.SHA256 {
		t.Fatalf("re-encoded state renders %s, want %s", d.SHA256, first.SHA256)
	}
}

// The golden file pins the bytes: a change of renderer, library or Go
// version that changes them fails here, and then every stored document's
// hash would differ from a re-render (see the ADR). Rewrite it with -update
// only for an intended change of the document.
func TestRenderGolden(t *testing.T) {
	d := render(t, "Acme Telecom", stateJSON(t, approvedQuote(), fiberChars))
	path := filepath.Join("testdata", "quote.pdf")
	if *update {
		if err := os.WriteFile(path, d.Bytes, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRenderGolden -update to create it)", err)
	}
	if !bytes.Equal(d.Bytes, want) {
		t.Fatalf("render is %s (%d bytes), golden %s is %s (%d bytes)", d.SHA256, len(d.Bytes), path,
			truth.ArtifactDigest(want), len(want))
	}
}

// The acceptance changes the quote but not its revision: the accepted
// quote renders the very document the customer accepted.
func TestAcceptanceDoesNotChangeTheDocument(t *testing.T) {
	approvedDoc := render(t, "Acme Telecom", stateJSON(t, approvedQuote(), fiberChars))
	s := approvedQuote()
	at := approved.Add(48 * time.Hour)
	s.Status, s.AcceptedBy, s.AcceptedAt, s.OrderID = quote.StatusAccepted, "user:sam", &at, "o-Q-7F3A"
	s.Document = &quote.Document{Revision: 2, SHA256: approvedDoc.SHA256, ArtifactID: approvedDoc.SHA256, MediaType: documents.MediaType, AttachedBy: "user:sam", AttachedAt: at}
	s.Acceptance = &quote.Acceptance{AcceptedBy: "user:sam", Channel: "portal", AcceptedAt: at, Revision: 2, DocumentSHA256: approvedDoc.SHA256, PriceHash: s.Price.Hash}
	if d := render(t, "Acme Telecom", stateJSON(t, s, fiberChars)); d.SHA256 != approvedDoc.SHA256 {
		t.Fatalf("the accepted quote renders %s, the approved one %s", d.SHA256, approvedDoc.SHA256)
	}
}

func TestEveryFactChangesTheDocument(t *testing.T) {
	base := render(t, "Acme Telecom", stateJSON(t, approvedQuote(), fiberChars))
	for _, tc := range []struct {
		name   string
		seller string
		edit   func(*quote.State)
		chars  map[int]map[string]any
	}{
		{name: "revision", edit: func(s *quote.State) { s.Revision = 3 }},
		{name: "seller", seller: "Acme Telecom AG"},
		{name: "price hash", edit: func(s *quote.State) { s.Price.Hash = strings.Repeat("a", 64) }},
		{name: "monthly total", edit: func(s *quote.State) { s.Price.MonthlyTotal = "89.83" }},
		{name: "quantity", edit: func(s *quote.State) { s.Lines[1].Quantity = 2 }},
		{name: "approver", edit: func(s *quote.State) { s.Approvals[0].ApprovedBy = "user:bo" }},
		{name: "valid until", edit: func(s *quote.State) { s.ValidUntil = s.ValidUntil.Add(24 * time.Hour) }},
		{name: "approval time", edit: func(s *quote.State) { s.ApprovedAt = ptr(approved.Add(time.Second)) }},
		{name: "characteristic", chars: map[int]map[string]any{0: {"speedMbps": 1000, "staticIp": true, "technology": "FTTH"}}},
		{name: "no characteristics", chars: map[int]map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := approvedQuote()
			if tc.edit != nil {
				tc.edit(&s)
			}
			seller := tc.seller
			if seller == "" {
				seller = "Acme Telecom"
			}
			chars := fiberChars
			if tc.chars != nil {
				chars = tc.chars
			}
			if d := render(t, seller, stateJSON(t, s, chars)); d.SHA256 == base.SHA256 {
				t.Fatalf("changing the %s left the document at %s", tc.name, d.SHA256)
			}
		})
	}
}

// pdfString is s as it appears in an uncompressed content stream: cp1252,
// with the PDF string escapes.
func pdfString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x80:
			b.WriteRune(r)
		case r == 'ü':
			b.WriteByte(0xfc)
		case r == 'ö':
			b.WriteByte(0xf6)
		default:
			b.WriteByte('.')
		}
	}
	return b.String()
}

// TestDocumentIsWellFormed checks the structure a PDF reader relies on
// (header, trailer, a cross-reference table whose offsets point at their
// objects) and that the facts of the quote are in the text.
func TestDocumentIsWellFormed(t *testing.T) {
	s := approvedQuote()
	d := render(t, "Acme Telecom", stateJSON(t, s, fiberChars))
	b := d.Bytes
	if !bytes.HasPrefix(b, []byte("%PDF-1.")) || !bytes.HasSuffix(bytes.TrimRight(b, "\n"), []byte("%%EOF")) {
		t.Fatalf("not a PDF: starts %q, ends %q", b[:8], b[len(b)-8:])
	}
	checkXref(t, b)
	if bytes.Contains(b, []byte("/ID")) {
		t.Error("the document carries an /ID, which differs between renders in most writers")
	}
	if !bytes.Contains(b, []byte("/CreationDate (D:20250301103015)")) || !bytes.Contains(b, []byte("/ModDate (D:20250301103015)")) {
		t.Error("the PDF dates are not the revision's approval time")
	}
	for _, want := range []string{
		"Acme Telecom", "Quote Q-7F3A - revision 2", "Müller & Söhne GmbH, Zürich (C-1)", "EUR",
		"2025-03-31 00:00 UTC", "Fiber 100 Mbit/s business access", "Managed router",
		"99.00", "49.90", "178.20", "89.82", "250.00", "400.00", "428.20", "28.20",
		"speedMbps: 100; staticIp: true; technology: FTTH", "Line discount: 10% of both charges",
		"Quote discount: 28.20 off the one-time charge",
		"Level 1 approved by user:alex", "Level 2 approved by user:carla at 2025-03-01 10:30:15 UTC (policy version 4)",
		s.Price.Hash, "grainline.pricing.v2", "page 1 of 1",
	} {
		if !bytes.Contains(b, []byte(pdfString(want))) {
			t.Errorf("the document does not show %q", want)
		}
	}
}

// checkXref follows startxref to the cross-reference table and checks that
// every in-use entry points at "N 0 obj".
func checkXref(t *testing.T, b []byte) {
	t.Helper()
	m := regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no startxref before the end-of-file marker")
	}
	off, _ := strconv.Atoi(string(m[1]))
	if off >= len(b) || !bytes.HasPrefix(b[off:], []byte("xref")) {
		t.Fatalf("startxref %d does not point at the xref table", off)
	}
	hdr := regexp.MustCompile(`^xref\s+0 (\d+)\s+`).FindSubmatch(b[off:])
	if hdr == nil {
		t.Fatal("xref table has no subsection header")
	}
	n, _ := strconv.Atoi(string(hdr[1]))
	entries := regexp.MustCompile(`(\d{10}) (\d{5}) ([nf])`).FindAllSubmatch(b[off:], n)
	if len(entries) != n || n < 5 {
		t.Fatalf("xref announces %d entries, found %d", n, len(entries))
	}
	for i, e := range entries {
		if string(e[3]) != "n" {
			continue
		}
		o, _ := strconv.Atoi(string(e[1]))
		if want := fmt.Sprintf("%d 0 obj", i); o >= len(b) || !bytes.HasPrefix(b[o:], []byte(want)) {
			t.Fatalf("xref entry %d points at offset %d, which does not start %q", i, o, want)
		}
	}
}

// Many lines flow onto further pages; each page numbers itself.
func TestLongQuoteBreaksPages(t *testing.T) {
	s := approvedQuote()
	for i := range 80 {
		id := fmt.Sprintf("L%d", 10+i)
		s.Lines = append(s.Lines, grains.Line{LineID: id, OfferingID: "seat", Name: fmt.Sprintf("Seat licence %d with a long name that wraps onto a second line of the offering column", i),
			Quantity: i + 1, UnitOneTime: "1.00", UnitMonthly: "2.00", OneTimeTotal: fmt.Sprintf("%d.00", i+1), MonthlyTotal: fmt.Sprintf("%d.00", 2*(i+1))})
	}
	d := render(t, "Acme Telecom", stateJSON(t, s, nil))
	pages := bytes.Count(d.Bytes, []byte("/Type /Page\n")) + bytes.Count(d.Bytes, []byte("/Type /Page "))
	if pages < 3 {
		t.Fatalf("80 lines fit on %d pages", pages)
	}
	last := fmt.Sprintf("page %d of %d", pages, pages)
	if !bytes.Contains(d.Bytes, []byte(last)) || !bytes.Contains(d.Bytes, []byte("Seat licence 79")) {
		t.Fatalf("document of %d pages lacks %q or the last line", pages, last)
	}
	checkXref(t, d.Bytes)
}

func TestDocumentDate(t *testing.T) {
	submitted := priced.Add(time.Minute)
	for _, tc := range []struct {
		name string
		edit func(*quote.State)
		want time.Time
	}{
		{"approved", func(*quote.State) {}, approved.Truncate(time.Second)},
		{"approved without approval", func(s *quote.State) { s.ApprovedAt, s.Approvals = nil, nil }, submitted},
		{"accepted", func(s *quote.State) { s.Status, s.AcceptedAt = quote.StatusAccepted, ptr(approved.Add(time.Hour)) }, approved.Truncate(time.Second)},
		{"priced", func(s *quote.State) { s.ApprovedAt, s.SubmittedAt, s.Status = nil, nil, quote.StatusInProgress }, priced},
		{"not priced", func(s *quote.State) {
			s.ApprovedAt, s.SubmittedAt, s.Status, s.Price = nil, nil, quote.StatusInProgress, nil
		}, created},
		{"other zone", func(s *quote.State) { s.ApprovedAt = ptr(approved.In(time.FixedZone("X", 3600))) }, approved.Truncate(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := approvedQuote()
			tc.edit(&s)
			if got := documents.DocumentDate(s); !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Fatalf("DocumentDate = %v, want %v UTC", got, tc.want)
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	unpriced := approvedQuote()
	unpriced.Price = nil
	for _, tc := range []struct {
		name   string
		seller string
		state  []byte
	}{
		{"no seller", " ", stateJSON(t, approvedQuote(), nil)},
		{"not JSON", "Acme", []byte("{")},
		{"no quote", "Acme", []byte(`{}`)},
		{"not priced", "Acme", stateJSON(t, unpriced, nil)},
		{"characteristics not an object", "Acme", []byte(`{"id":"Q","price":{"hash":"h"},"lines":[{"characteristics":[1]}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := documents.Render(documents.Input{Seller: tc.seller, State: tc.state})
			if !errors.Is(err, documents.ErrNotRenderable) {
				t.Fatalf("Render: %v, want ErrNotRenderable", err)
			}
		})
	}
}

func BenchmarkRender(b *testing.B) {
	state := stateJSON(b, approvedQuote(), fiberChars)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := documents.Render(documents.Input{Seller: "Acme Telecom", State: state}); err != nil {
			b.Fatal(err)
		}
	}
}
