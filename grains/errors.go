package grains

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes are part of the public
// API (problem+json "code", NATS error replies): never rename one.
type Code string

// The error catalogue. gateway maps each code to one HTTP status.
const (
	CodeBadRequest            Code = "bad_request"             // malformed input (400)
	CodeUnauthenticated       Code = "unauthenticated"         // no or invalid token (401)
	CodeForbidden             Code = "forbidden"               // token lacks a role (403)
	CodeNotFound              Code = "not_found"               // no such aggregate for this tenant (404)
	CodeInvalidTransition     Code = "invalid_transition"      // command not allowed in the current state (409)
	CodeAlreadyExists         Code = "already_exists"          // create on an existing aggregate (409)
	CodeQuoteExpired          Code = "quote_expired"           // the quote is past its validUntil (409)
	CodeStaleRevision         Code = "stale_revision"          // the command names a quote revision or price hash that is not current (409)
	CodeDocumentRequired      Code = "document_required"       // accept needs a document attached to the current revision (409)
	CodeDocumentHashMismatch  Code = "document_hash_mismatch"  // accept's documentSha256 is missing or not the attached document's (409)
	CodeBillingOutcomeUnknown Code = "billing_outcome_unknown" // completing/skipping a billing task whose outcome is unknown (409)
	CodeReconcileFirst        Code = "reconcile_first"         // retrying a reservation whose outcome is unknown, skipping a retired task (409)
	CodePointOfNoReturn       Code = "point_of_no_return"      // cancel past an item's point of no return (409)
	CodeConflict              Code = "conflict"                // concurrent write lost, retry (409)
	CodeRevisionMismatch      Code = "revision_mismatch"       // If-Match did not match (412)
	CodeValidation            Code = "validation_failed"       // semantically invalid input (422)
	CodeIdempotencyKeyReused  Code = "idempotency_key_reused"  // same key, different request (422)
	CodeUnavailable           Code = "unavailable"             // a dependency is down, retry later (503)
	CodeInternal              Code = "internal"                // a bug (500)
)

// Violation is one problem with the input, located by a JSON pointer.
type Violation struct {
	Pointer string `json:"pointer"` // RFC 6901, e.g. "/lines/0/quantity"
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a domain error with a stable code. It survives the wire: the
// runtime sends Code, Message and Violations to the caller unchanged.
type Error struct {
	Code       Code        `json:"code"`
	Message    string      `json:"message"`
	Violations []Violation `json:"violations,omitempty"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf makes an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or CodeInternal when err carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
