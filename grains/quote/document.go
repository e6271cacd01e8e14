package quote

import (
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

// Acceptance channels: how the customer's acceptance reached us.
const (
	ChannelPortal        = "portal"
	ChannelEmail         = "email"
	ChannelSalesAssisted = "sales-assisted"
	ChannelAPI           = "api"
)

// Channels lists the acceptance channels; accept without one records
// ChannelAPI.
var Channels = []string{ChannelPortal, ChannelEmail, ChannelSalesAssisted, ChannelAPI}

// DefaultMediaType is the media type of a document attached without one.
const DefaultMediaType = "application/pdf"

// Document is the rendered quote document of one revision, as stored
// outside the grain: its SHA-256 (64 lower-case hex digits), the id of the
// stored artifact and its media type, and who attached it when.
type Document struct {
	Revision   int       `json:"revision"`
	SHA256     string    `json:"sha256"`
	ArtifactID string    `json:"artifactId"`
	MediaType  string    `json:"mediaType"`
	AttachedBy string    `json:"attachedBy"`
	AttachedAt time.Time `json:"attachedAt"`
}

// Acceptance is the evidence of the customer's acceptance: who accepted
// through which channel when, and exactly what: the revision, the SHA-256
// of the document shown (empty when none was required nor given) and the
// hash of the price.
type Acceptance struct {
	AcceptedBy     string    `json:"acceptedBy"`
	Channel        string    `json:"channel"`
	AcceptedAt     time.Time `json:"acceptedAt"`
	Revision       int       `json:"revision"`
	DocumentSHA256 string    `json:"documentSha256,omitempty"`
	PriceHash      string    `json:"priceHash"`
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func decideAttach(s State, c AttachDocument, env grains.Env, now time.Time) ([]grains.Event, error) {
	if c.Revision != s.revision() {
		return nil, grains.Errorf(grains.CodeStaleRevision, "%s: quote %s is at revision %d, not %d", CmdAttachDocument, s.ID, s.revision(), c.Revision)
	}
	mediaType := c.MediaType
	if mediaType == "" {
		mediaType = DefaultMediaType
	}
	ev := DocumentAttached{QuoteID: s.ID, Status: s.Status, Revision: c.Revision, SHA256: c.SHA256,
		ArtifactID: c.ArtifactID, MediaType: mediaType, AttachedBy: env.Actor, AttachedAt: now}
	if d := s.Document; d != nil && d.Revision == c.Revision {
		if d.SHA256 == c.SHA256 {
			return nil, nil // the same document again
		}
		ev.ReplacesSHA256, ev.ReplacesArtifactID = d.SHA256, d.ArtifactID
	}
	return []grains.Event{ev}, nil
}

// decideAccept checks the document rules (the status and validity checks
// ran before) and records the acceptance evidence.
func decideAccept(s State, c Accept, env grains.Env, opts Options, now time.Time) ([]grains.Event, error) {
	doc := s.Document
	if doc != nil && doc.Revision != s.revision() {
		doc = nil
	}
	switch {
	case doc == nil && (opts.RequireDocument || c.DocumentSHA256 != ""):
		return nil, grains.Errorf(grains.CodeDocumentRequired, "%s: quote %s has no document attached for revision %d", CmdAccept, s.ID, s.revision())
	case doc != nil && c.DocumentSHA256 == "" && opts.RequireDocument:
		return nil, grains.Errorf(grains.CodeDocumentHashMismatch, "%s: documentSha256 is required: the customer accepts the document of revision %d", CmdAccept, s.revision())
	case doc != nil && c.DocumentSHA256 != "" && c.DocumentSHA256 != doc.SHA256:
		return nil, grains.Errorf(grains.CodeDocumentHashMismatch, "%s: documentSha256 %s is not the document of revision %d (%s)", CmdAccept, c.DocumentSHA256, s.revision(), doc.SHA256)
	}
	channel := c.Channel
	if channel == "" {
		channel = ChannelAPI
	}
	return []grains.Event{Accepted{
		QuoteID: s.ID, OrderID: order.IDForQuote(s.ID),
		CustomerID: s.CustomerID, CustomerName: s.CustomerName, Currency: s.Currency,
		Lines: grains.CloneLines(s.Lines), OneTimeTotal: s.Price.OneTimeTotal, MonthlyTotal: s.Price.MonthlyTotal,
		PriceHash: s.Price.Hash, AcceptedBy: env.Actor, AcceptedAt: now,
		Channel: channel, Revision: s.revision(), DocumentSHA256: c.DocumentSHA256,
	}}, nil
}

// checkStale refuses an approve or reject that names a revision or price
// hash other than the current ones: the approver looked at another revision.
func checkStale(s State, command string, revision int, priceHash string) error {
	if revision != 0 && revision != s.revision() {
		return grains.Errorf(grains.CodeStaleRevision, "%s: quote %s is at revision %d, not %d", command, s.ID, s.revision(), revision)
	}
	if priceHash != "" && (s.Price == nil || s.Price.Hash != priceHash) {
		current := "none"
		if s.Price != nil {
			current = s.Price.Hash
		}
		return grains.Errorf(grains.CodeStaleRevision, "%s: quote %s revision %d has price hash %s, not %s", command, s.ID, s.revision(), current, priceHash)
	}
	return nil
}
