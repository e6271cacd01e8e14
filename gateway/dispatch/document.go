package dispatch

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/documents"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// Commands on quotes that the dispatcher serves itself, around the grain.
const (
	// CommandRenderDocument renders the quote's current revision to PDF,
	// stores it as an artifact and attaches it (quote attachDocument).
	CommandRenderDocument = "renderDocument"
	// CommandDocument reads the metadata of the current revision's document.
	CommandDocument = "document"
)

// Artifacts keeps tenants' artifacts: truth.ArtifactStore, which both truth
// store adapters implement. It must be safe for concurrent use.
type Artifacts interface {
	PutArtifact(ctx context.Context, a truth.Artifact) error
	GetArtifact(ctx context.Context, tenant, sha256 string) (truth.Artifact, error)
}

// DocumentBody describes a quote's document: the reply to renderDocument
// and to the document metadata read. Href is where its bytes are
// (GET /v1/artifacts/{sha256}).
type DocumentBody struct {
	QuoteID    string    `json:"quoteId"`
	Revision   int       `json:"revision"`
	SHA256     string    `json:"sha256"`
	MediaType  string    `json:"mediaType"`
	ArtifactID string    `json:"artifactId"`
	Size       int       `json:"size,omitempty"`
	Href       string    `json:"href"`
	AttachedBy string    `json:"attachedBy,omitempty"`
	AttachedAt time.Time `json:"attachedAt,omitzero"`
}

// ArtifactHref is the HTTP path of an artifact.
func ArtifactHref(sha string) string { return "/v1/artifacts/" + sha }

// DocumentIdempotencyKey is the key under which renderDocument sends
// attachDocument: one per quote, revision and document, so a repeat (or a
// render racing it) replays the first attachment. It lies outside the
// clients' namespace (ClientKeyPrefix).
func DocumentIdempotencyKey(quoteID string, revision int, sha string) string {
	return "document:" + quoteID + ":" + strconv.Itoa(revision) + ":" + sha
}

// ReprDigest is the Repr-Digest header value (RFC 9530) of b's SHA-256
// given as hex: sha-256=:<base64>:.
func ReprDigest(sha string) string {
	raw, err := hex.DecodeString(sha)
	if err != nil {
		return ""
	}
	return "sha-256=:" + base64.StdEncoding.EncodeToString(raw) + ":"
}

// readQuote reads and decodes a quote of the principal's tenant.
func (d *Dispatcher) readQuote(ctx context.Context, p auth.Principal, id string) (quote.State, call.Result, error) {
	if err := ValidID(id); err != nil {
		return quote.State{}, call.Result{}, err
	}
	res, err := d.deps.Reader.Get(ctx, p.Tenant, grains.KindQuote, id)
	if err != nil {
		return quote.State{}, call.Result{}, err
	}
	var s quote.State
	if err := json.Unmarshal(res.State, &s); err != nil {
		return quote.State{}, call.Result{}, grains.Errorf(grains.CodeInternal, "quote %s: state does not decode: %v", id, err)
	}
	return s, res, nil
}

func (d *Dispatcher) artifacts() (Artifacts, error) {
	if d.deps.Artifacts == nil {
		return nil, grains.Errorf(grains.CodeUnavailable, "no artifact store is configured")
	}
	return d.deps.Artifacts, nil
}

func (d *Dispatcher) seller(tenant grains.TenantID) string {
	if d.deps.Seller != nil {
		if name := d.deps.Seller(tenant); name != "" {
			return name
		}
	}
	return string(tenant)
}

// renderDocument renders the quote's current revision, stores the PDF as an
// artifact of the tenant and attaches it to the quote with the caller's
// principal. The quote must be approved (accepted also answers, with the
// document attached before). The body may name the revision the caller
// expects ({"revision": n}); another current revision is stale_revision.
// The reply is 201 when this call attached the document, 200 when it was
// attached already (the same revision renders the same bytes).
func (d *Dispatcher) renderDocument(ctx context.Context, req Request) Reply {
	payload, err := ObjectPayload(req.Payload)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var q struct {
		Revision int `json:"revision"`
	}
	if err := grains.DecodePayload(CommandRenderDocument, payload, &q, true); err != nil {
		return Fail(err, req.Instance)
	}
	// The grain checks the role too; checking first keeps callers who may
	// not attach from storing artifacts.
	if err := grains.RequireRole(grains.Env{Roles: req.Principal.Roles}, CommandRenderDocument, quote.RoleSales); err != nil {
		return Fail(err, req.Instance)
	}
	store, err := d.artifacts()
	if err != nil {
		return Fail(err, req.Instance)
	}
	s, res, err := d.readQuote(ctx, req.Principal, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	rev := max(s.Revision, 1)
	if q.Revision != 0 && q.Revision != rev {
		return Fail(grains.Errorf(grains.CodeStaleRevision, "%s: quote %s is at revision %d, not %d", CommandRenderDocument, s.ID, rev, q.Revision), req.Instance)
	}
	if s.Status == quote.StatusAccepted && s.Document != nil && s.Document.Revision == rev {
		// Accepted: the document the customer accepted, never a new one.
		return documentReply(http.StatusOK, s.ID, *s.Document, 0, res.Revision)
	}
	if s.Status != quote.StatusApproved {
		return Fail(grains.Errorf(grains.CodeInvalidTransition, "quote %s is %s: a document is rendered for an approved quote", s.ID, s.Status), req.Instance)
	}
	doc, err := documents.Render(documents.Input{Seller: d.seller(req.Principal.Tenant), State: res.State})
	if err != nil {
		return Fail(grains.Errorf(grains.CodeInternal, "quote %s: %v", s.ID, err), req.Instance)
	}
	if err := store.PutArtifact(ctx, truth.Artifact{
		Tenant: string(req.Principal.Tenant), SHA256: doc.SHA256, MediaType: doc.MediaType, Bytes: doc.Bytes,
		CreatedAt: time.Now(), CreatedBy: req.Principal.Subject,
	}); err != nil {
		return Fail(artifactError(err), req.Instance)
	}
	attach, err := json.Marshal(quote.AttachDocument{Revision: rev, SHA256: doc.SHA256, ArtifactID: doc.SHA256, MediaType: doc.MediaType})
	if err != nil {
		return Fail(err, req.Instance)
	}
	out, err := d.deps.Sender.Send(ctx, call.Command{
		Tenant: req.Principal.Tenant, Kind: grains.KindQuote, ID: s.ID, Name: quote.CmdAttachDocument, Payload: attach,
		IdempotencyKey: DocumentIdempotencyKey(s.ID, rev, doc.SHA256), IfMatch: req.IfMatch,
		Actor: req.Principal.Subject, Roles: req.Principal.Roles, CorrelationID: req.CorrelationID,
	})
	if err != nil {
		return Fail(err, req.Instance)
	}
	var after quote.State
	if err := json.Unmarshal(out.State, &after); err != nil || after.Document == nil {
		return Fail(grains.Errorf(grains.CodeInternal, "quote %s: attachDocument answered without a document", s.ID), req.Instance)
	}
	status := http.StatusOK
	if !out.Replayed && out.Revision > res.Revision {
		status = http.StatusCreated
	}
	r := documentReply(status, s.ID, *after.Document, len(doc.Bytes), out.Revision)
	r.Replayed = out.Replayed
	if status == http.StatusCreated {
		r.Location = ArtifactHref(after.Document.SHA256)
	}
	return r
}

// checkAttached refuses an attachDocument whose sha256 names no artifact of
// the tenant, when an artifact store is configured: a quote must never
// refer to a document nobody can fetch, or be accepted on one. Malformed
// payloads pass on to the grain, which reports them.
func (d *Dispatcher) checkAttached(ctx context.Context, p auth.Principal, payload []byte) error {
	if d.deps.Artifacts == nil {
		return nil
	}
	var c struct {
		SHA256 string `json:"sha256"`
	}
	if json.Unmarshal(payload, &c) != nil || !truth.ValidDigest(c.SHA256) {
		return nil
	}
	_, err := d.deps.Artifacts.GetArtifact(ctx, string(p.Tenant), c.SHA256)
	switch {
	case errors.Is(err, truth.ErrNotFound):
		return &grains.Error{Code: grains.CodeValidation, Message: "attachDocument: sha256 names no stored artifact of the tenant",
			Violations: []grains.Violation{{Pointer: "/sha256", Code: "artifact_not_found",
				Message: "store the document first: POST /v1/quotes/{id}/document renders, stores and attaches it"}}}
	case err != nil:
		return artifactError(err)
	}
	return nil
}

// document answers the metadata of the current revision's document.
func (d *Dispatcher) document(ctx context.Context, req Request) Reply {
	if _, err := ObjectPayload(req.Payload); err != nil {
		return Fail(err, req.Instance)
	}
	s, res, err := d.readQuote(ctx, req.Principal, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	doc, err := currentDocument(s)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return documentReply(http.StatusOK, s.ID, doc, 0, res.Revision)
}

func currentDocument(s quote.State) (quote.Document, error) {
	rev := max(s.Revision, 1)
	if s.Document == nil || s.Document.Revision != rev {
		return quote.Document{}, grains.Errorf(grains.CodeNotFound, "quote %s has no document for revision %d", s.ID, rev)
	}
	return *s.Document, nil
}

func documentReply(status int, quoteID string, doc quote.Document, size int, aggRevision int64) Reply {
	body, _ := json.Marshal(DocumentBody{
		QuoteID: quoteID, Revision: doc.Revision, SHA256: doc.SHA256, MediaType: doc.MediaType, ArtifactID: doc.ArtifactID,
		Size: size, Href: ArtifactHref(doc.SHA256), AttachedBy: doc.AttachedBy, AttachedAt: doc.AttachedAt,
	})
	return ok(status, body, quoteID, aggRevision)
}

// DocumentBytes answers the bytes of the document attached to the quote's
// current revision: not_found when there is none.
func (d *Dispatcher) DocumentBytes(ctx context.Context, p auth.Principal, quoteID, instance string) Reply {
	s, _, err := d.readQuote(ctx, p, quoteID)
	if err != nil {
		return Fail(err, instance)
	}
	doc, err := currentDocument(s)
	if err != nil {
		return Fail(err, instance)
	}
	r := d.artifactBytes(ctx, p, doc.SHA256, instance)
	if r.Status == http.StatusNotFound {
		// The quote names a document its tenant does not hold: the
		// artifact is stored before it is attached, so this is a bug.
		return Fail(grains.Errorf(grains.CodeInternal, "quote %s names document %s, which is not stored", quoteID, doc.SHA256), instance)
	}
	if r.Status == http.StatusOK {
		r.ID = quoteID
		r.Headers["Content-Disposition"] = fmt.Sprintf(`inline; filename="quote-%s-r%d.pdf"`, quoteID, doc.Revision)
	}
	return r
}

// Artifact answers the bytes of one of the principal's tenant's artifacts.
// A digest of another tenant, or one that is not 64 lower-case hex digits,
// is not_found.
func (d *Dispatcher) Artifact(ctx context.Context, p auth.Principal, sha, instance string) Reply {
	return d.artifactBytes(ctx, p, sha, instance)
}

func (d *Dispatcher) artifactBytes(ctx context.Context, p auth.Principal, sha, instance string) Reply {
	store, err := d.artifacts()
	if err != nil {
		return Fail(err, instance)
	}
	if !truth.ValidDigest(sha) {
		return Fail(grains.Errorf(grains.CodeNotFound, "no artifact %q", sha), instance)
	}
	a, err := store.GetArtifact(ctx, string(p.Tenant), sha)
	if err != nil {
		return Fail(artifactError(err), instance)
	}
	return Reply{
		Status: http.StatusOK, ContentType: a.MediaType, Body: a.Bytes, ETag: strconv.Quote(a.SHA256),
		Headers: map[string]string{"Repr-Digest": ReprDigest(a.SHA256), "Cache-Control": "private, max-age=31536000, immutable",
			"X-Content-Type-Options": "nosniff"},
	}
}

// artifactError maps artifact store errors to problem codes.
func artifactError(err error) error {
	switch {
	case errors.Is(err, truth.ErrNotFound):
		return grains.Errorf(grains.CodeNotFound, "no such artifact")
	case errors.Is(err, truth.ErrArtifactTooLarge):
		return grains.Errorf(grains.CodeValidation, "%v", err)
	case errors.Is(err, truth.ErrInvalidArtifact):
		return grains.Errorf(grains.CodeInternal, "%v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	}
	return grains.Errorf(grains.CodeUnavailable, "artifact store: %v", err)
}
