// Package documents renders the customer-facing document of a quote
// revision: a PDF (codeberg.org/go-pdf/fpdf, core fonts, cp1252) that shows
// the seller, the quote, its customer, currency and validity, every line
// with its characteristics, prices and discounts, the totals, the approvals
// and the price hash.
//
// Rendering is deterministic: the same quote state and seller give the same
// bytes, byte for byte, in any process and at any time, so the document's
// SHA-256 identifies what the customer saw (see the ADR on artifacts and
// deterministic documents in docs/adr). To that end the PDF's
// dates are the revision's own (see DocumentDate), its catalogs are sorted,
// its content streams are not compressed (compress/flate output is not
// promised stable across Go releases), no /ID is written, maps are walked
// in sorted order and nothing reads the clock or a random source.
package documents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains/quote"
)

// MediaType is the media type of every document Render makes.
const MediaType = "application/pdf"

// ErrNotRenderable: the quote state cannot be rendered (it does not decode,
// names no quote, or has no price).
var ErrNotRenderable = errors.New("documents: quote cannot be rendered")

// Document is one rendered quote document.
type Document struct {
	QuoteID   string
	Revision  int
	SHA256    string // lower-case hex SHA-256 of Bytes
	MediaType string
	Bytes     []byte
	// Date is the date written into the PDF (DocumentDate of the state).
	Date time.Time
}

// Input is what a document is rendered from.
type Input struct {
	// Seller is the tenant's name as the customer knows it. Required.
	Seller string
	// State is the quote's snapshot: the JSON of quote.State as the grain
	// stores and the gateway reads it.
	State []byte
}

// Render renders the current revision of the quote in in.State. The quote
// must be priced; rendering does not check its status (the caller decides
// which quotes get a document), and the status is not part of the
// document: a revision renders the same before and after acceptance.
func Render(in Input) (Document, error) {
	if strings.TrimSpace(in.Seller) == "" {
		return Document{}, fmt.Errorf("%w: no seller name", ErrNotRenderable)
	}
	var s quote.State
	if err := json.Unmarshal(in.State, &s); err != nil {
		return Document{}, fmt.Errorf("%w: state does not decode: %v", ErrNotRenderable, err)
	}
	if !quote.Exists(s) {
		return Document{}, fmt.Errorf("%w: the state holds no quote", ErrNotRenderable)
	}
	if s.Price == nil {
		return Document{}, fmt.Errorf("%w: quote %s revision %d is not priced", ErrNotRenderable, s.ID, revisionOf(s))
	}
	chars, err := characteristics(in.State)
	if err != nil {
		return Document{}, fmt.Errorf("%w: %v", ErrNotRenderable, err)
	}
	r := newRenderer(in.Seller, s, chars)
	b, err := r.render()
	if err != nil {
		return Document{}, fmt.Errorf("documents: render quote %s: %w", s.ID, err)
	}
	return Document{
		QuoteID: s.ID, Revision: revisionOf(s), SHA256: truth.ArtifactDigest(b), MediaType: MediaType,
		Bytes: b, Date: r.date,
	}, nil
}

// DocumentDate is the date a document of s's current revision carries: when
// the revision was approved (the last approval), else when it was submitted
// (approved at submission when no approval was required), else when it was
// priced, else when the quote was created. It is a fact of the revision,
// never the time of rendering, and does not depend on the quote's status,
// so the revision renders the same bytes before and after acceptance. UTC,
// whole seconds (PDF dates keep no more).
func DocumentDate(s quote.State) time.Time {
	var t time.Time
	switch {
	case s.ApprovedAt != nil:
		t = *s.ApprovedAt
	case s.SubmittedAt != nil:
		t = *s.SubmittedAt
	case s.Price != nil && !s.Price.PricedAt.IsZero():
		t = s.Price.PricedAt
	default:
		t = s.CreatedAt
	}
	return t.UTC().Truncate(time.Second)
}

func revisionOf(s quote.State) int { return max(s.Revision, 1) }

// characteristics reads the characteristics of each line, by line index, from
// the raw state: lines carry them as a JSON object of name to scalar value
// when the offering was configured. They are read from the JSON rather than
// from grains.Line so that every value renders as it was stored.
func characteristics(state []byte) ([]map[string]json.RawMessage, error) {
	var raw struct {
		Lines []struct {
			Characteristics map[string]json.RawMessage `json:"characteristics"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(state, &raw); err != nil {
		return nil, fmt.Errorf("lines do not decode: %v", err)
	}
	out := make([]map[string]json.RawMessage, len(raw.Lines))
	for i, l := range raw.Lines {
		out[i] = l.Characteristics
	}
	return out, nil
}

// Page geometry, in millimetres (A4 portrait).
const (
	margin   = 15.0
	pageW    = 210.0
	pageH    = 297.0
	contentW = pageW - 2*margin
	lineH    = 5.0
)

// The columns of the line table: widths sum to contentW.
var lineCols = []struct {
	title string
	w     float64
	align string
}{
	{"#", 8, "L"},
	{"Offering", 62, "L"},
	{"Qty", 12, "R"},
	{"Unit one-time", 25, "R"},
	{"Unit monthly", 25, "R"},
	{"One-time", 24, "R"},
	{"Monthly", 24, "R"},
}

type renderer struct {
	pdf    *fpdf.Fpdf
	tr     func(string) string
	seller string
	s      quote.State
	chars  []map[string]json.RawMessage
	date   time.Time
}

func newRenderer(seller string, s quote.State, chars []map[string]json.RawMessage) *renderer {
	pdf := fpdf.New("P", "mm", "A4", "")
	r := &renderer{pdf: pdf, seller: seller, s: s, chars: chars, date: DocumentDate(s)}
	r.tr = pdf.UnicodeTranslatorFromDescriptor("")
	return r
}

// text makes s printable in a core font: control characters become spaces
// and runes outside cp1252 become '.' (the translator's choice).
func (r *renderer) text(s string) string {
	return r.tr(strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, s))
}

func (r *renderer) render() ([]byte, error) {
	p, s := r.pdf, r.s
	rev := revisionOf(s)
	p.SetCatalogSort(true)
	p.SetCompression(false)
	p.SetCreationDate(r.date)
	p.SetModificationDate(r.date)
	p.SetProducer("Grainline", false)
	p.SetCreator("Grainline", false)
	p.SetTitle(r.text(fmt.Sprintf("Quote %s revision %d", s.ID, rev)), false)
	p.SetAuthor(r.text(r.seller), false)
	p.SetSubject(r.text("Quote for "+s.CustomerName), false)
	p.SetLang("en")
	p.SetMargins(margin, margin, margin)
	p.SetAutoPageBreak(true, margin+8)
	p.AliasNbPages("{nb}")
	p.SetFooterFunc(func() {
		p.SetY(-margin - 3)
		p.SetFont("Helvetica", "", 7)
		p.SetTextColor(90, 90, 90)
		p.CellFormat(contentW, 4, r.text(fmt.Sprintf("%s - quote %s revision %d - price hash %s - page %d of {nb}",
			r.seller, s.ID, rev, short(s.Price.Hash), p.PageNo())), "T", 0, "C", false, 0, "")
		p.SetTextColor(0, 0, 0)
	})
	p.AddPage()

	r.header(rev)
	r.parties()
	r.lines()
	r.totals()
	r.approvals()
	r.evidence(rev)

	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func short(hash string) string {
	if len(hash) > 16 {
		return hash[:16]
	}
	return hash
}

func (r *renderer) header(rev int) {
	p, s := r.pdf, r.s
	p.SetFont("Helvetica", "B", 16)
	p.CellFormat(contentW, 8, r.text(r.seller), "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "B", 13)
	p.CellFormat(contentW, 7, r.text(fmt.Sprintf("Quote %s - revision %d", s.ID, rev)), "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 9)
	p.CellFormat(contentW, lineH, r.text("Date: "+r.date.Format("2006-01-02 15:04:05 UTC")), "", 1, "L", false, 0, "")
	p.Ln(3)
}

// field writes one "label: value" row.
func (r *renderer) field(label, value string) {
	p := r.pdf
	p.SetFont("Helvetica", "B", 9)
	p.CellFormat(40, lineH, r.text(label), "", 0, "L", false, 0, "")
	p.SetFont("Helvetica", "", 9)
	p.MultiCell(contentW-40, lineH, r.text(value), "", "L", false)
}

func (r *renderer) parties() {
	s := r.s
	r.field("Seller", r.seller)
	customer := s.CustomerName
	if s.CustomerID != "" {
		customer += " (" + s.CustomerID + ")"
	}
	r.field("Customer", customer)
	if s.CustomerSegment != "" {
		r.field("Segment", s.CustomerSegment)
	}
	r.field("Currency", s.Currency)
	if !s.ValidUntil.IsZero() {
		r.field("Valid until", s.ValidUntil.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if s.TermMonths > 0 {
		r.field("Term", fmt.Sprintf("%d months", s.TermMonths))
	}
	r.field("Catalog version", strconv.Itoa(s.CatalogVersion))
	r.pdf.Ln(3)
}

func (r *renderer) tableHeader() {
	p := r.pdf
	p.SetFont("Helvetica", "B", 8)
	p.SetFillColor(230, 230, 230)
	for _, c := range lineCols {
		p.CellFormat(c.w, 6, c.title, "B", 0, c.align, true, 0, "")
	}
	p.Ln(-1)
}

func (r *renderer) lines() {
	p, s := r.pdf, r.s
	p.SetFont("Helvetica", "B", 11)
	p.CellFormat(contentW, 7, "Lines", "", 1, "L", false, 0, "")
	r.tableHeader()
	if len(s.Lines) == 0 {
		p.SetFont("Helvetica", "I", 8)
		p.CellFormat(contentW, lineH, "No lines.", "", 1, "L", false, 0, "")
	}
	for i, l := range s.Lines {
		p.SetFont("Helvetica", "", 8)
		name := p.SplitText(r.text(l.Name), lineCols[1].w-1)
		if len(name) == 0 {
			name = []string{""}
		}
		details := r.lineDetails(i, l.LineID)
		h := float64(len(name)+len(details)) * 4
		if p.GetY()+h > pageH-margin-10 {
			p.AddPage()
			r.tableHeader()
			p.SetFont("Helvetica", "", 8)
		}
		x, y := p.GetX(), p.GetY()
		cells := []string{strconv.Itoa(i + 1), "", strconv.Itoa(l.Quantity), l.UnitOneTime, l.UnitMonthly, l.OneTimeTotal, l.MonthlyTotal}
		for j, c := range lineCols {
			if j == 1 {
				for k, n := range name {
					p.SetXY(x+lineCols[0].w, y+float64(k)*4)
					p.CellFormat(c.w, 4, n, "", 0, "L", false, 0, "")
				}
				p.SetXY(x+lineCols[0].w+c.w, y)
				continue
			}
			p.CellFormat(c.w, 4, r.text(cells[j]), "", 0, c.align, false, 0, "")
		}
		p.SetXY(x, y+float64(len(name))*4)
		p.SetFont("Helvetica", "", 7)
		p.SetTextColor(70, 70, 70)
		for _, d := range details {
			p.SetX(x + lineCols[0].w)
			p.CellFormat(contentW-lineCols[0].w, 4, d, "", 1, "L", false, 0, "")
		}
		p.SetTextColor(0, 0, 0)
		p.Line(margin, p.GetY()+0.5, pageW-margin, p.GetY()+0.5)
		p.Ln(1)
	}
	p.Ln(3)
}

// lineDetails are the small rows under a line: its offering id and list
// prices, its characteristics (sorted by name) and its discount.
func (r *renderer) lineDetails(i int, lineID string) []string {
	var out []string
	t, hasTerms := r.s.Terms[lineID]
	l := r.s.Lines[i]
	first := "Offering " + l.OfferingID + ", line " + lineID
	if hasTerms {
		first += ", list " + money(t.ListOneTime) + " one-time / " + money(t.ListMonthly) + " monthly"
	}
	out = append(out, r.text(first))
	if i < len(r.chars) && len(r.chars[i]) > 0 {
		names := make([]string, 0, len(r.chars[i]))
		for n := range r.chars[i] {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for k, n := range names {
			parts[k] = n + ": " + scalar(r.chars[i][n])
		}
		out = append(out, r.pdf.SplitText(r.text(strings.Join(parts, "; ")), contentW-lineCols[0].w-1)...)
	}
	if hasTerms && t.Discount != nil {
		out = append(out, r.text("Line discount: "+discountText(t.Discount)))
	}
	return out
}

// scalar renders a characteristic value: a string as itself, anything else
// as its JSON text.
func scalar(raw json.RawMessage) string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	return string(bytes.TrimSpace(raw))
}

func money(v string) string {
	if v == "" {
		return "0"
	}
	return v
}

func discountText(d *quote.Discount) string {
	switch {
	case d == nil:
		return "none"
	case d.Percent != "":
		return d.Percent + "% of both charges"
	default:
		charge := "one-time"
		if d.Charge == "monthly" {
			charge = "monthly"
		}
		return d.Amount + " off the " + charge + " charge"
	}
}

func (r *renderer) totals() {
	p, s := r.pdf, r.s
	pr := s.Price
	p.SetFont("Helvetica", "B", 11)
	p.CellFormat(contentW, 7, "Totals", "", 1, "L", false, 0, "")
	row := func(label, oneTime, monthly string, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		p.SetFont("Helvetica", style, 9)
		p.CellFormat(contentW-60, lineH, r.text(label), "", 0, "R", false, 0, "")
		p.CellFormat(30, lineH, r.text(oneTime), "", 0, "R", false, 0, "")
		p.CellFormat(30, lineH, r.text(monthly), "", 1, "R", false, 0, "")
	}
	row("", "One-time", "Monthly", true)
	if pr.SubtotalOneTime != "" || pr.SubtotalMonthly != "" {
		row("Subtotal", money(pr.SubtotalOneTime), money(pr.SubtotalMonthly), false)
	}
	if s.Discount != nil {
		p.SetFont("Helvetica", "", 9)
		p.CellFormat(contentW, lineH, r.text("Quote discount: "+discountText(s.Discount)), "", 1, "R", false, 0, "")
	}
	if pr.DiscountOneTime != "" || pr.DiscountMonthly != "" {
		row("Discount", money(pr.DiscountOneTime), money(pr.DiscountMonthly), false)
	}
	row("Total ("+s.Currency+")", money(pr.OneTimeTotal), money(pr.MonthlyTotal), true)
	p.Ln(3)
}

func (r *renderer) approvals() {
	p, s := r.pdf, r.s
	p.SetFont("Helvetica", "B", 11)
	p.CellFormat(contentW, 7, "Approvals", "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 9)
	switch {
	case len(s.Approvals) > 0:
		for _, a := range s.Approvals {
			p.CellFormat(contentW, lineH, r.text(fmt.Sprintf("Level %d approved by %s at %s (policy version %d)",
				a.Level, a.ApprovedBy, a.ApprovedAt.UTC().Format("2006-01-02 15:04:05 UTC"), a.PolicyVersion)), "", 1, "L", false, 0, "")
		}
	case s.ApprovedBy != "" && s.ApprovedAt != nil:
		p.CellFormat(contentW, lineH, r.text(fmt.Sprintf("Approved by %s at %s",
			s.ApprovedBy, s.ApprovedAt.UTC().Format("2006-01-02 15:04:05 UTC"))), "", 1, "L", false, 0, "")
	case s.SubmittedAt != nil && s.RequiredLevel == 0:
		p.CellFormat(contentW, lineH, r.text(fmt.Sprintf("No approval required (policy version %d).", s.PolicyVersion)), "", 1, "L", false, 0, "")
	default:
		p.CellFormat(contentW, lineH, r.text("Not approved."), "", 1, "L", false, 0, "")
	}
	p.Ln(3)
}

func (r *renderer) evidence(rev int) {
	p, s := r.pdf, r.s
	p.SetFont("Helvetica", "B", 11)
	p.CellFormat(contentW, 7, "Price evidence", "", 1, "L", false, 0, "")
	algorithm := s.Price.Algorithm
	if algorithm == "" {
		algorithm = "unnamed"
	}
	r.field("Price hash", s.Price.Hash)
	r.field("Algorithm", algorithm)
	r.field("Priced at", s.Price.PricedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	p.Ln(2)
	p.SetFont("Helvetica", "I", 8)
	p.MultiCell(contentW, 4, r.text(fmt.Sprintf("This document shows revision %d of quote %s. The price hash identifies the "+
		"pricing result it shows; the SHA-256 of this file is recorded with the quote, and acceptance names it.", rev, s.ID)), "", "L", false)
}
