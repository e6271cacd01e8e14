// Package problem renders errors as RFC 9457 problem details
// ("application/problem+json"). It holds the one catalogue that maps every
// error code to an HTTP status; the HTTP and NATS front doors both answer
// with the same JSON.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"strconv"

	"github.com/grainline/grainline/grains"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// TypePrefix prefixes a code to make the problem "type" URI.
const TypePrefix = "urn:grainline:problem:"

// Codes the gateway itself produces about the shape of an HTTP request. They
// never come from a grain.
const (
	CodeUnsupportedMediaType grains.Code = "unsupported_media_type" // body is not JSON (415)
	CodePayloadTooLarge      grains.Code = "payload_too_large"      // body over the size limit (413)
)

// Entry is one line of the catalogue.
type Entry struct {
	Code   grains.Code
	Status int
	Title  string
}

var catalogue = map[grains.Code]Entry{
	grains.CodeBadRequest:            {grains.CodeBadRequest, http.StatusBadRequest, "Bad request"},
	grains.CodeUnauthenticated:       {grains.CodeUnauthenticated, http.StatusUnauthorized, "Unauthenticated"},
	grains.CodeForbidden:             {grains.CodeForbidden, http.StatusForbidden, "Forbidden"},
	grains.CodeNotFound:              {grains.CodeNotFound, http.StatusNotFound, "Not found"},
	grains.CodeInvalidTransition:     {grains.CodeInvalidTransition, http.StatusConflict, "Invalid transition"},
	grains.CodeAlreadyExists:         {grains.CodeAlreadyExists, http.StatusConflict, "Already exists"},
	grains.CodeQuoteExpired:          {grains.CodeQuoteExpired, http.StatusConflict, "Quote expired"},
	grains.CodeStaleRevision:         {grains.CodeStaleRevision, http.StatusConflict, "Stale revision"},
	grains.CodeDocumentRequired:      {grains.CodeDocumentRequired, http.StatusConflict, "Document required"},
	grains.CodeDocumentHashMismatch:  {grains.CodeDocumentHashMismatch, http.StatusConflict, "Document hash mismatch"},
	grains.CodeConflict:              {grains.CodeConflict, http.StatusConflict, "Conflict"},
	grains.CodeRevisionMismatch:      {grains.CodeRevisionMismatch, http.StatusPreconditionFailed, "Revision mismatch"},
	grains.CodeValidation:            {grains.CodeValidation, http.StatusUnprocessableEntity, "Validation failed"},
	grains.CodeIdempotencyKeyReused:  {grains.CodeIdempotencyKeyReused, http.StatusUnprocessableEntity, "Idempotency key reused"},
	grains.CodeUnavailable:           {grains.CodeUnavailable, http.StatusServiceUnavailable, "Service unavailable"},
	grains.CodeInternal:              {grains.CodeInternal, http.StatusInternalServerError, "Internal error"},
	CodePayloadTooLarge:              {CodePayloadTooLarge, http.StatusRequestEntityTooLarge, "Payload too large"},
	CodeUnsupportedMediaType:         {CodeUnsupportedMediaType, http.StatusUnsupportedMediaType, "Unsupported media type"},
	grains.CodeBillingOutcomeUnknown: {grains.CodeBillingOutcomeUnknown, http.StatusConflict, "Billing outcome unknown"},
	grains.CodeReconcileFirst:        {grains.CodeReconcileFirst, http.StatusConflict, "Reconcile first"},
	grains.CodePointOfNoReturn:       {grains.CodePointOfNoReturn, http.StatusConflict, "Point of no return"},
}

// Catalogue returns every known code with its status and title, ordered by
// status then code.
func Catalogue() []Entry {
	out := make([]Entry, 0, len(catalogue))
	for _, e := range catalogue {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Status != out[j].Status {
			return out[i].Status < out[j].Status
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// Lookup returns the catalogue entry of code; an unknown code is reported as
// internal (a grain must not invent codes).
func Lookup(code grains.Code) Entry {
	if e, ok := catalogue[code]; ok {
		return e
	}
	return catalogue[grains.CodeInternal]
}

// Status returns the HTTP status of code.
func Status(code grains.Code) int { return Lookup(code).Status }

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Status     int                `json:"status"`
	Detail     string             `json:"detail,omitempty"`
	Code       grains.Code        `json:"code"`
	Violations []grains.Violation `json:"violations,omitempty"`
	Instance   string             `json:"instance,omitempty"`
}

// New makes the problem for code with a human-readable detail.
func New(code grains.Code, detail string) Problem {
	e := Lookup(code)
	return Problem{
		Type:   TypePrefix + string(e.Code),
		Title:  e.Title,
		Status: e.Status,
		Detail: detail,
		Code:   e.Code,
	}
}

// From classifies err:
//   - a *grains.Error keeps its code, message and violations;
//   - a context deadline or cancellation, a network timeout, or an error
//     that reports itself transient (Transient() or Temporary() true) is
//     "unavailable" (503): retrying later may succeed;
//   - anything else is "internal" (500) and its text is not disclosed.
//
// The caller logs err; the problem is safe to show to the client.
func From(err error) Problem {
	var ge *grains.Error
	if errors.As(err, &ge) {
		p := New(ge.Code, ge.Message)
		if len(ge.Violations) > 0 {
			p.Violations = append([]grains.Violation(nil), ge.Violations...)
		}
		return p
	}
	if IsTransient(err) {
		return New(grains.CodeUnavailable, "a dependency did not answer in time; retry later")
	}
	return New(grains.CodeInternal, "an internal error occurred")
}

// IsTransient reports whether err is worth retrying later.
func IsTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var tr interface{ Transient() bool }
	if errors.As(err, &tr) && tr.Transient() {
		return true
	}
	var tmp interface{ Temporary() bool }
	if errors.As(err, &tmp) && tmp.Temporary() {
		return true
	}
	return false
}

// WithInstance returns p with its instance set.
func (p Problem) WithInstance(instance string) Problem {
	p.Instance = instance
	return p
}

// JSON encodes p.
func (p Problem) JSON() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		// A Problem holds only strings and ints; this cannot happen.
		return []byte(`{"type":"` + TypePrefix + `internal","title":"Internal error","status":500,"code":"internal"}`)
	}
	return b
}

// Error makes p usable as an error (e.g. to carry it through a function that
// returns error).
func (p Problem) Error() string { return string(p.Code) + ": " + p.Detail }

// Write sends p as an HTTP response.
func Write(w http.ResponseWriter, p Problem) {
	body := p.JSON()
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="grainline"`)
	}
	w.WriteHeader(p.Status)
	w.Write(body)
}
