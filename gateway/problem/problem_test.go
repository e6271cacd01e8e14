package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/grainline/grainline/grains"
)

// Every grains.Code has exactly the status the API promises.
func TestCatalogueStatuses(t *testing.T) {
	want := map[grains.Code]int{
		grains.CodeBadRequest:            400,
		grains.CodeUnauthenticated:       401,
		grains.CodeForbidden:             403,
		grains.CodeNotFound:              404,
		grains.CodeInvalidTransition:     409,
		grains.CodeAlreadyExists:         409,
		grains.CodeQuoteExpired:          409,
		grains.CodeStaleRevision:         409,
		grains.CodeDocumentRequired:      409,
		grains.CodeDocumentHashMismatch:  409,
		grains.CodeConflict:              409,
		grains.CodeRevisionMismatch:      412,
		grains.CodeValidation:            422,
		grains.CodeIdempotencyKeyReused:  422,
		grains.CodeUnavailable:           503,
		grains.CodeInternal:              500,
		CodePayloadTooLarge:              413,
		CodeUnsupportedMediaType:         415,
		grains.CodeBillingOutcomeUnknown: 409,
		grains.CodeReconcileFirst:        409,
		grains.CodePointOfNoReturn:       409,
	}
	for code, status := range want {
		if got := Status(code); got != status {
			t.Errorf("Status(%s) = %d, want %d", code, got, status)
		}
	}
	if n := len(Catalogue()); n != len(want) {
		t.Errorf("catalogue has %d entries, want %d", n, len(want))
	}
	if Status("made_up") != 500 {
		t.Error("unknown code is not internal")
	}
}

type transient struct{}

func (transient) Error() string   { return "broker busy" }
func (transient) Transient() bool { return true }

func TestFromClassifies(t *testing.T) {
	ge := &grains.Error{Code: grains.CodeValidation, Message: "bad lines",
		Violations: []grains.Violation{{Pointer: "/lines/0/quantity", Code: "min", Message: "must be > 0"}}}
	cases := []struct {
		err        error
		code       grains.Code
		status     int
		detail     string
		violations int
	}{
		{ge, grains.CodeValidation, 422, "bad lines", 1},
		{fmt.Errorf("send: %w", grains.Errorf(grains.CodeNotFound, "no quote q-1")), grains.CodeNotFound, 404, "no quote q-1", 0},
		{fmt.Errorf("cluster request: %w", context.DeadlineExceeded), grains.CodeUnavailable, 503, "", 0},
		{context.Canceled, grains.CodeUnavailable, 503, "", 0},
		{fmt.Errorf("wrap: %w", transient{}), grains.CodeUnavailable, 503, "", 0},
		{&os.PathError{Op: "read", Path: "/secret/path", Err: os.ErrDeadlineExceeded}, grains.CodeUnavailable, 503, "", 0},
		{errors.New("nil map write at /secret/path"), grains.CodeInternal, 500, "an internal error occurred", 0},
	}
	for _, tc := range cases {
		p := From(tc.err)
		if p.Code != tc.code || p.Status != tc.status || len(p.Violations) != tc.violations {
			t.Errorf("From(%v) = %+v", tc.err, p)
		}
		if tc.detail != "" && p.Detail != tc.detail {
			t.Errorf("From(%v).Detail = %q, want %q", tc.err, p.Detail, tc.detail)
		}
		if p.Type != TypePrefix+string(tc.code) {
			t.Errorf("type = %q", p.Type)
		}
	}
}

func TestWriteShape(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, New(grains.CodeUnauthenticated, "token expired").WithInstance("/v1/quotes"))
	if rec.Code != 401 || rec.Header().Get("Content-Type") != ContentType || rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "urn:grainline:problem:unauthenticated", "title": "Unauthenticated",
		"status": float64(401), "detail": "token expired", "code": "unauthenticated", "instance": "/v1/quotes"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, ok := m["violations"]; ok {
		t.Error("empty violations are rendered")
	}
}
