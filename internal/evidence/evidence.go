// Package evidence assembles the evidence bundle of a quote: one JSON
// document (schema "grainline.evidence.v1") that reconstructs a disputed
// quote from the truth store: its revisions with their lines,
// configuration, price trace and hash; the approvals with the policy rules
// that required them; the document and the acceptance; the order it
// became; and the quote's and order's audit records with a verification of
// the tenant's hash chain up to the newest of them.
//
// The quote's State JSON is read defensively through views of the fields
// the bundle needs: fields added later are ignored, fields missing (a
// snapshot from before they existed) are empty, and raw parts (lines, the
// price trace) are passed through as stored.
package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
)

// Schema names the bundle's shape; a change that is not additive gets a new
// version.
const Schema = "grainline.evidence.v1"

// Store is what the bundle reads from the truth store.
type Store interface {
	Load(ctx context.Context, key truth.Key) (truth.Snapshot, error)
	truth.AuditTrailReader
	truth.ChainReader
}

// Catalogs returns the document of a published catalog version as stored
// (CodeNotFound, or any error, when it cannot).
type Catalogs interface {
	CatalogVersionJSON(ctx context.Context, tenant grains.TenantID, version int) ([]byte, error)
}

// Policies returns the rules of an approval policy version as JSON.
type Policies interface {
	PolicyRulesJSON(ctx context.Context, tenant grains.TenantID, version int) ([]byte, error)
}

// Builder assembles bundles. Catalogs and Policies are optional: without
// them the bundle names the versions but holds no catalog offerings or
// policy rules. All fields must be safe for concurrent use.
type Builder struct {
	Store    Store
	Catalogs Catalogs
	Policies Policies
	Now      func() time.Time // default time.Now
	// PageSize is the page of the chain verification. Default 1000.
	PageSize int
}

// Bundle is the evidence of one quote.
type Bundle struct {
	Schema            string          `json:"schema"`
	GeneratedAt       time.Time       `json:"generatedAt"`
	Tenant            string          `json:"tenant"`
	Quote             QuoteSummary    `json:"quote"`
	Catalog           CatalogEvidence `json:"catalog"`
	Revisions         []Revision      `json:"revisions"`
	Approvals         []Approval      `json:"approvals"`
	Policies          []PolicyRules   `json:"policies"`
	Document          *Document       `json:"document"`
	Acceptance        *Acceptance     `json:"acceptance"`
	Order             *Order          `json:"order"`
	Audit             []AuditRecord   `json:"audit"`
	ChainVerification Verification    `json:"chainVerification"`
}

// QuoteSummary identifies the quote.
type QuoteSummary struct {
	ID              string     `json:"id"`
	Status          string     `json:"status"`
	Revision        int        `json:"revision"`      // the quote's current revision number
	StoreRevision   int64      `json:"storeRevision"` // the snapshot revision (the ETag)
	CustomerID      string     `json:"customerId"`
	CustomerName    string     `json:"customerName"`
	Currency        string     `json:"currency"`
	CatalogVersion  int        `json:"catalogVersion"`
	TermMonths      int        `json:"termMonths,omitempty"`
	CustomerSegment string     `json:"customerSegment,omitempty"`
	CreatedBy       string     `json:"createdBy"`
	CreatedAt       *time.Time `json:"createdAt,omitempty"`
	ValidUntil      *time.Time `json:"validUntil,omitempty"`
}

// CatalogEvidence is the pinned catalog version: the offerings the quote's
// lines use, as published, and the SHA-256 of the whole version document.
type CatalogEvidence struct {
	Version   int               `json:"version"`
	SHA256    string            `json:"sha256,omitempty"`
	Offerings []json.RawMessage `json:"offerings"`
	// Unavailable says why the catalog is not included.
	Unavailable string `json:"unavailable,omitempty"`
}

// Revision is one revision of the quote: the frozen ones and the current.
type Revision struct {
	Number       int             `json:"number"`
	Current      bool            `json:"current"`
	Status       string          `json:"status"`
	Lines        json.RawMessage `json:"lines"`
	Terms        json.RawMessage `json:"terms,omitempty"`
	Discount     json.RawMessage `json:"discount,omitempty"`
	Price        *Price          `json:"price"`
	Submission   *Submission     `json:"submission"`
	Approvals    []Approval      `json:"approvals"`
	Rejection    *Rejection      `json:"rejection,omitempty"`
	Document     *Document       `json:"document,omitempty"`
	SupersededBy string          `json:"supersededBy,omitempty"`
	SupersededAt *time.Time      `json:"supersededAt,omitempty"`
}

// Price is a revision's pricing result.
type Price struct {
	Hash         string          `json:"hash"`
	Algorithm    string          `json:"algorithm,omitempty"`
	OneTimeTotal string          `json:"oneTimeTotal"`
	MonthlyTotal string          `json:"monthlyTotal"`
	PricedAt     *time.Time      `json:"pricedAt,omitempty"`
	Trace        json.RawMessage `json:"trace"`
}

// Submission is what submit pinned.
type Submission struct {
	By            string        `json:"by"`
	At            *time.Time    `json:"at,omitempty"`
	PolicyVersion int           `json:"policyVersion"`
	RequiredLevel int           `json:"requiredLevel"`
	MatchedRules  []MatchedRule `json:"matchedRules"`
}

// MatchedRule is a policy rule that matched at submission.
type MatchedRule struct {
	Rule  string `json:"rule"`
	Level int    `json:"level"`
}

// Approval is one recorded approval and the matched rules that required
// its level (every matched rule of that level or above).
type Approval struct {
	Level         int           `json:"level"`
	ApprovedBy    string        `json:"approvedBy"`
	ApprovedAt    *time.Time    `json:"approvedAt,omitempty"`
	Revision      int           `json:"revision"`
	PriceHash     string        `json:"priceHash"`
	PolicyVersion int           `json:"policyVersion"`
	RequiredBy    []MatchedRule `json:"requiredBy"`
}

// PolicyRules are the rules of a policy version an approval was decided
// under.
type PolicyRules struct {
	Version int             `json:"version"`
	Rules   json.RawMessage `json:"rules,omitempty"`
	// Unavailable says why the rules are not included.
	Unavailable string `json:"unavailable,omitempty"`
}

// Rejection is a revision's rejection.
type Rejection struct {
	By     string     `json:"by"`
	At     *time.Time `json:"at,omitempty"`
	Reason string     `json:"reason"`
}

// Document is the rendered document of a revision.
type Document struct {
	Revision   int        `json:"revision"`
	SHA256     string     `json:"sha256"`
	ArtifactID string     `json:"artifactId"`
	MediaType  string     `json:"mediaType,omitempty"`
	AttachedBy string     `json:"attachedBy,omitempty"`
	AttachedAt *time.Time `json:"attachedAt,omitempty"`
}

// Acceptance is the evidence of the customer's acceptance.
type Acceptance struct {
	AcceptedBy     string     `json:"acceptedBy"`
	Channel        string     `json:"channel,omitempty"`
	AcceptedAt     *time.Time `json:"acceptedAt,omitempty"`
	Revision       int        `json:"revision,omitempty"`
	DocumentSHA256 string     `json:"documentSha256,omitempty"`
	PriceHash      string     `json:"priceHash,omitempty"`
}

// Order is the order the accepted quote became.
type Order struct {
	ID string `json:"id"`
	// Exists is false while the order has not been created yet.
	Exists        bool   `json:"exists"`
	Status        string `json:"status,omitempty"`
	StoreRevision int64  `json:"storeRevision,omitempty"`
	PriceHash     string `json:"priceHash,omitempty"`
}

// AuditRecord is one record of the tenant's audit chain.
type AuditRecord struct {
	Seq           int64           `json:"seq"`
	Kind          string          `json:"kind"`
	ID            string          `json:"id"`
	Revision      int64           `json:"revision"`
	Actor         string          `json:"actor"`
	Action        string          `json:"action"`
	Reason        string          `json:"reason,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	At            time.Time       `json:"at"`
	Detail        json.RawMessage `json:"detail,omitempty"`
	PrevHash      string          `json:"prevHash"`
	Hash          string          `json:"hash"`
}

// Verification is the check of the tenant's chain from seq 1 up to the
// newest record of the bundle.
type Verification struct {
	Verified       bool   `json:"verified"`
	CheckedRecords int64  `json:"checkedRecords"`
	UpToSeq        int64  `json:"upToSeq"`
	HeadSeq        int64  `json:"headSeq"`
	HeadHash       string `json:"headHash,omitempty"`
	BrokenSeq      int64  `json:"brokenSeq,omitempty"`
	Error          string `json:"error,omitempty"`
}

// quoteView is the part of the quote's State JSON the bundle reads.
type quoteView struct {
	ID              string      `json:"id"`
	Status          string      `json:"status"`
	Revision        int         `json:"revision"`
	CustomerID      string      `json:"customerId"`
	CustomerName    string      `json:"customerName"`
	Currency        string      `json:"currency"`
	CatalogVersion  int         `json:"catalogVersion"`
	TermMonths      int         `json:"termMonths"`
	CustomerSegment string      `json:"customerSegment"`
	CreatedBy       string      `json:"createdBy"`
	CreatedAt       *time.Time  `json:"createdAt"`
	ValidUntil      *time.Time  `json:"validUntil"`
	AcceptedBy      string      `json:"acceptedBy"`
	AcceptedAt      *time.Time  `json:"acceptedAt"`
	OrderID         string      `json:"orderId"`
	Acceptance      *Acceptance `json:"acceptance"`
	revisionView
}

// revisionView is a revision in the State JSON: the fields of a frozen
// revision, which the state's own top-level fields repeat for the current.
type revisionView struct {
	Number            int             `json:"number"`
	Lines             json.RawMessage `json:"lines"`
	Terms             json.RawMessage `json:"terms"`
	Discount          json.RawMessage `json:"discount"`
	Price             *priceView      `json:"price"`
	SubmittedBy       string          `json:"submittedBy"`
	SubmittedAt       *time.Time      `json:"submittedAt"`
	PolicyVersion     int             `json:"policyVersion"`
	RequiredLevel     int             `json:"requiredLevel"`
	ApprovalRules     []MatchedRule   `json:"approvalRules"`
	Approvals         []approvalView  `json:"approvals"`
	ApprovedPriceHash string          `json:"approvedPriceHash"`
	RejectedBy        string          `json:"rejectedBy"`
	RejectedAt        *time.Time      `json:"rejectedAt"`
	RejectedReason    string          `json:"rejectedReason"`
	Document          *Document       `json:"document"`
	SupersededBy      string          `json:"supersededBy"`
	SupersededAt      *time.Time      `json:"supersededAt"`
}

type priceView struct {
	Hash         string          `json:"hash"`
	Algorithm    string          `json:"algorithm"`
	OneTimeTotal string          `json:"oneTimeTotal"`
	MonthlyTotal string          `json:"monthlyTotal"`
	PricedAt     *time.Time      `json:"pricedAt"`
	Trace        json.RawMessage `json:"trace"`
}

type approvalView struct {
	Level         int        `json:"level"`
	ApprovedBy    string     `json:"approvedBy"`
	ApprovedAt    *time.Time `json:"approvedAt"`
	PolicyVersion int        `json:"policyVersion"`
	Revision      int        `json:"revision"`
	PriceHash     string     `json:"priceHash"`
}

// frozenView decodes a frozen revision, whose status is "status".
type frozenView struct {
	revisionView
	Status  string `json:"status"`
	Current bool   `json:"current"`
}

// Build assembles the bundle of quote quoteID of tenant: CodeNotFound when
// there is no such quote. A chain that does not verify is reported in the
// bundle, not as an error.
func (b *Builder) Build(ctx context.Context, tenant grains.TenantID, quoteID string) (*Bundle, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	qkey := truth.Key{Tenant: string(tenant), Kind: string(grains.KindQuote), ID: quoteID}
	snap, err := b.Store.Load(ctx, qkey)
	if errors.Is(err, truth.ErrNotFound) {
		return nil, grains.NotFound(grains.KindQuote, quoteID, "evidence")
	}
	if err != nil {
		return nil, fmt.Errorf("evidence: load quote: %w", err)
	}
	var q quoteView
	if err := json.Unmarshal(snap.State, &q); err != nil {
		return nil, fmt.Errorf("evidence: decode quote %s: %w", quoteID, err)
	}
	var frozen struct {
		Revisions []frozenView `json:"revisions"`
	}
	_ = json.Unmarshal(snap.State, &frozen) // the same document: it decoded above
	if q.ID == "" {
		return nil, grains.NotFound(grains.KindQuote, quoteID, "evidence")
	}
	bundle := &Bundle{
		Schema: Schema, GeneratedAt: now().UTC(), Tenant: string(tenant),
		Quote: QuoteSummary{
			ID: q.ID, Status: q.Status, Revision: max(q.Revision, 1), StoreRevision: snap.Revision,
			CustomerID: q.CustomerID, CustomerName: q.CustomerName, Currency: q.Currency,
			CatalogVersion: q.CatalogVersion, TermMonths: q.TermMonths, CustomerSegment: q.CustomerSegment,
			CreatedBy: q.CreatedBy, CreatedAt: q.CreatedAt, ValidUntil: nonZero(q.ValidUntil),
		},
		Revisions: []Revision{}, Approvals: []Approval{}, Policies: []PolicyRules{}, Audit: []AuditRecord{},
	}
	for _, f := range frozen.Revisions {
		if f.Current {
			continue
		}
		bundle.Revisions = append(bundle.Revisions, revision(f.revisionView, f.Number, f.Status, false))
	}
	cur := q.revisionView
	bundle.Revisions = append(bundle.Revisions, revision(cur, max(q.Revision, 1), q.Status, true))
	for _, r := range bundle.Revisions {
		bundle.Approvals = append(bundle.Approvals, r.Approvals...)
		if r.Document != nil && r.Current {
			d := *r.Document
			bundle.Document = &d
		}
	}
	bundle.Acceptance = acceptance(q)
	b.addCatalog(ctx, tenant, q, bundle)
	b.addPolicies(ctx, tenant, bundle)

	keys := []truth.Key{qkey}
	if q.OrderID != "" {
		okey := truth.Key{Tenant: string(tenant), Kind: string(grains.KindOrder), ID: q.OrderID}
		bundle.Order = &Order{ID: q.OrderID}
		osnap, err := b.Store.Load(ctx, okey)
		switch {
		case errors.Is(err, truth.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("evidence: load order: %w", err)
		default:
			var ov struct {
				Status    string `json:"status"`
				PriceHash string `json:"priceHash"`
			}
			_ = json.Unmarshal(osnap.State, &ov) // a shape we cannot read shows as an order without status
			bundle.Order.Exists, bundle.Order.Status, bundle.Order.StoreRevision, bundle.Order.PriceHash = true, ov.Status, osnap.Revision, ov.PriceHash
			keys = append(keys, okey)
		}
	}
	var recs []truth.Audit
	for _, k := range keys {
		trail, err := b.Store.AuditTrail(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("evidence: audit trail of %s %s: %w", k.Kind, k.ID, err)
		}
		recs = append(recs, trail...)
	}
	slices.SortFunc(recs, func(a, b truth.Audit) int { return cmpInt(a.Seq, b.Seq) })
	for _, a := range recs {
		bundle.Audit = append(bundle.Audit, auditRecord(a))
	}
	bundle.ChainVerification = b.verify(ctx, string(tenant), recs)
	return bundle, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nonZero(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return t
}

func revision(v revisionView, number int, status string, current bool) Revision {
	r := Revision{Number: number, Current: current, Status: status, Lines: orEmptyArray(v.Lines),
		Terms: nullable(v.Terms), Discount: nullable(v.Discount), Approvals: []Approval{},
		Document: v.Document, SupersededBy: v.SupersededBy, SupersededAt: v.SupersededAt}
	if v.Price != nil {
		r.Price = &Price{Hash: v.Price.Hash, Algorithm: v.Price.Algorithm, OneTimeTotal: v.Price.OneTimeTotal,
			MonthlyTotal: v.Price.MonthlyTotal, PricedAt: v.Price.PricedAt, Trace: orEmptyArray(v.Price.Trace)}
	}
	if v.SubmittedBy != "" || v.SubmittedAt != nil {
		rules := append([]MatchedRule{}, v.ApprovalRules...)
		r.Submission = &Submission{By: v.SubmittedBy, At: v.SubmittedAt, PolicyVersion: v.PolicyVersion,
			RequiredLevel: v.RequiredLevel, MatchedRules: rules}
	}
	for _, a := range v.Approvals {
		req := []MatchedRule{}
		for _, m := range v.ApprovalRules {
			if m.Level >= a.Level {
				req = append(req, m)
			}
		}
		rev := a.Revision
		if rev == 0 {
			rev = number
		}
		r.Approvals = append(r.Approvals, Approval{Level: a.Level, ApprovedBy: a.ApprovedBy, ApprovedAt: a.ApprovedAt,
			Revision: rev, PriceHash: a.PriceHash, PolicyVersion: a.PolicyVersion, RequiredBy: req})
	}
	if v.RejectedBy != "" {
		r.Rejection = &Rejection{By: v.RejectedBy, At: v.RejectedAt, Reason: v.RejectedReason}
	}
	return r
}

func orEmptyArray(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return json.RawMessage("[]")
	}
	return raw
}

func nullable(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

// acceptance is the quote's acceptance evidence; a quote accepted before
// the evidence existed shows who and when only.
func acceptance(q quoteView) *Acceptance {
	if q.Acceptance != nil {
		a := *q.Acceptance
		return &a
	}
	if q.AcceptedBy == "" {
		return nil
	}
	return &Acceptance{AcceptedBy: q.AcceptedBy, AcceptedAt: q.AcceptedAt}
}

// addCatalog adds the pinned catalog version: its hash and the offerings
// the lines of any revision use.
func (b *Builder) addCatalog(ctx context.Context, tenant grains.TenantID, q quoteView, bundle *Bundle) {
	c := &bundle.Catalog
	c.Version, c.Offerings = q.CatalogVersion, []json.RawMessage{}
	switch {
	case q.CatalogVersion == 0:
		c.Unavailable = "the quote names no catalog version"
		return
	case b.Catalogs == nil:
		c.Unavailable = "no catalog source"
		return
	}
	raw, err := b.Catalogs.CatalogVersionJSON(ctx, tenant, q.CatalogVersion)
	if err != nil {
		c.Unavailable = fmt.Sprintf("catalog version %d: %v", q.CatalogVersion, err)
		return
	}
	sum := sha256.Sum256(raw)
	c.SHA256 = hex.EncodeToString(sum[:])
	used := map[string]bool{}
	for _, r := range bundle.Revisions {
		var lines []struct {
			OfferingID string `json:"offeringId"`
		}
		_ = json.Unmarshal(r.Lines, &lines) // lines of another shape name no offering
		for _, l := range lines {
			used[l.OfferingID] = true
		}
	}
	var doc struct {
		Offerings []json.RawMessage `json:"offerings"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		c.Unavailable = fmt.Sprintf("catalog version %d does not decode: %v", q.CatalogVersion, err)
		return
	}
	for _, o := range doc.Offerings {
		var id struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(o, &id) == nil && used[id.ID] {
			c.Offerings = append(c.Offerings, o)
		}
	}
}

// addPolicies adds the rules of every policy version a submission used.
func (b *Builder) addPolicies(ctx context.Context, tenant grains.TenantID, bundle *Bundle) {
	seen := map[int]bool{}
	for _, r := range bundle.Revisions {
		if r.Submission == nil || r.Submission.PolicyVersion == 0 || seen[r.Submission.PolicyVersion] {
			continue
		}
		v := r.Submission.PolicyVersion
		seen[v] = true
		pr := PolicyRules{Version: v}
		if b.Policies == nil {
			pr.Unavailable = "no policy source"
		} else if rules, err := b.Policies.PolicyRulesJSON(ctx, tenant, v); err != nil {
			pr.Unavailable = fmt.Sprintf("policy version %d: %v", v, err)
		} else {
			pr.Rules = rules
		}
		bundle.Policies = append(bundle.Policies, pr)
	}
	slices.SortFunc(bundle.Policies, func(a, b PolicyRules) int { return a.Version - b.Version })
}

func auditRecord(a truth.Audit) AuditRecord {
	r := AuditRecord{Seq: a.Seq, Kind: a.Aggregate.Kind, ID: a.Aggregate.ID, Revision: a.Revision, Actor: a.Actor,
		Action: a.Action, Reason: a.Reason, CorrelationID: a.CorrelationID, At: a.At.UTC(),
		PrevHash: hex.EncodeToString(a.PrevHash), Hash: hex.EncodeToString(a.Hash)}
	if len(a.Detail) > 0 {
		if json.Valid(a.Detail) {
			r.Detail = json.RawMessage(a.Detail)
		} else {
			r.Detail, _ = json.Marshal(hex.EncodeToString(a.Detail))
		}
	}
	return r
}

// verify checks the tenant's chain from seq 1 up to the newest of recs, and
// that every record of recs is the chain's record at its seq.
func (b *Builder) verify(ctx context.Context, tenant string, recs []truth.Audit) Verification {
	var v Verification
	if len(recs) == 0 {
		v.Verified = true
		return v
	}
	v.UpToSeq = recs[len(recs)-1].Seq
	pageSize := b.PageSize
	if pageSize <= 0 {
		pageSize = 1000
	}
	want := map[int64][]byte{}
	for _, a := range recs {
		want[a.Seq] = a.Hash
	}
	var prev []byte
	for from := int64(1); from <= v.UpToSeq; {
		page, err := b.Store.AuditChain(ctx, tenant, from, int(min(int64(pageSize), v.UpToSeq-from+1)))
		if err != nil {
			v.Error = fmt.Sprintf("read the chain from seq %d: %v", from, err)
			return v
		}
		if len(page) == 0 || page[0].Seq != from {
			v.BrokenSeq, v.Error = from, fmt.Sprintf("record %d is missing from the chain", from)
			return v
		}
		last, err := truth.VerifyChain(page, prev)
		v.CheckedRecords += last - from + 1
		if err != nil {
			var ce *truth.ChainError
			if errors.As(err, &ce) {
				v.BrokenSeq = ce.Seq
			}
			v.Error = err.Error()
			return v
		}
		for _, a := range page {
			if h, ok := want[a.Seq]; ok && !bytes.Equal(h, a.Hash) {
				v.BrokenSeq, v.Error = a.Seq, fmt.Sprintf("the record of this quote at seq %d differs from the chain's", a.Seq)
				return v
			}
		}
		prev = page[len(page)-1].Hash
		v.HeadSeq, v.HeadHash = last, hex.EncodeToString(prev)
		from = last + 1
	}
	v.Verified = true
	return v
}
