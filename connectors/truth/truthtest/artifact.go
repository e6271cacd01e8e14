package truthtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// runArtifacts checks truth.ArtifactStore, which every adapter implements.
func runArtifacts(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Roundtrip", testArtifactRoundtrip},
		{"Idempotent", testArtifactIdempotent},
		{"Tenants", testArtifactTenants},
		{"Invalid", testArtifactInvalid},
		{"SizeLimit", testArtifactSizeLimit},
		{"Concurrent", testArtifactConcurrent},
		{"Reopen", testArtifactReopen},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func artifactStore(t testing.TB, s truth.Store) truth.ArtifactStore {
	t.Helper()
	as, ok := s.(truth.ArtifactStore)
	if !ok {
		t.Fatalf("%T does not implement truth.ArtifactStore", s)
	}
	return as
}

// newArtifact returns a valid artifact of tenant holding body.
func newArtifact(tenant, body string) truth.Artifact {
	b := []byte(body)
	return truth.Artifact{
		Tenant: tenant, SHA256: truth.ArtifactDigest(b), MediaType: "application/pdf", Bytes: b,
		CreatedAt: base, CreatedBy: "user:alice",
	}
}

func putArtifact(t testing.TB, s truth.ArtifactStore, a truth.Artifact) {
	t.Helper()
	if err := s.PutArtifact(context.Background(), a); err != nil {
		t.Fatalf("PutArtifact %s/%s: %v", a.Tenant, a.SHA256, err)
	}
}

// wantArtifact checks that tenant's artifact under want.SHA256 is want.
func wantArtifact(t testing.TB, s truth.ArtifactStore, want truth.Artifact) {
	t.Helper()
	got, err := s.GetArtifact(context.Background(), want.Tenant, want.SHA256)
	if err != nil {
		t.Fatalf("GetArtifact %s/%s: %v", want.Tenant, want.SHA256, err)
	}
	if got.Tenant != want.Tenant || got.SHA256 != want.SHA256 || got.MediaType != want.MediaType ||
		!bytes.Equal(got.Bytes, want.Bytes) || got.Bytes == nil || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.CreatedBy != want.CreatedBy {
		t.Fatalf("GetArtifact %s/%s = {%s %s %q (%d bytes) %v %s}, want {%s %s %q %v %s}",
			want.Tenant, want.SHA256, got.Tenant, got.SHA256, got.MediaType, len(got.Bytes), got.CreatedAt, got.CreatedBy,
			want.Tenant, want.SHA256, want.MediaType, want.CreatedAt, want.CreatedBy)
	}
}

func wantNoArtifact(t testing.TB, s truth.ArtifactStore, tenant, sha string) {
	t.Helper()
	if a, err := s.GetArtifact(context.Background(), tenant, sha); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("GetArtifact %s/%s = %d bytes, %v; want ErrNotFound", tenant, sha, len(a.Bytes), err)
	}
}

func testArtifactRoundtrip(t *testing.T, h Harness) {
	s, _ := open(t, h)
	as := artifactStore(t, s)
	a := newArtifact("acme", "%PDF-1.4 binary \x00\xff\x80 body")
	wantNoArtifact(t, as, a.Tenant, a.SHA256)
	putArtifact(t, as, a)
	wantArtifact(t, as, a)
	// Empty bytes are an artifact too, read back as empty, not nil.
	e := newArtifact("acme", "")
	e.MediaType = "text/plain"
	putArtifact(t, as, e)
	wantArtifact(t, as, e)
	// A digest nobody stored, and one of the wrong form, are not found.
	wantNoArtifact(t, as, "acme", truth.ArtifactDigest([]byte("never stored")))
	wantNoArtifact(t, as, "acme", "not-a-digest")
	// Stores keep microseconds: a finer time reads back truncated.
	f := newArtifact("acme", "fine time")
	f.CreatedAt = base.Add(789 * time.Nanosecond)
	putArtifact(t, as, f)
	f.CreatedAt = truth.TimerTime(f.CreatedAt)
	wantArtifact(t, as, f)
}

// A second put of the same tenant and digest succeeds and changes nothing:
// the first media type, time and principal stay.
func testArtifactIdempotent(t *testing.T, h Harness) {
	s, _ := open(t, h)
	as := artifactStore(t, s)
	a := newArtifact("acme", "document v1")
	putArtifact(t, as, a)
	again := a
	again.MediaType = "application/octet-stream"
	again.CreatedAt = base.Add(time.Hour)
	again.CreatedBy = "user:bob"
	putArtifact(t, as, again)
	wantArtifact(t, as, a)
}

// Artifacts are scoped by tenant: another tenant's digest is not found, and
// the same bytes stored by two tenants are two artifacts.
func testArtifactTenants(t *testing.T, h Harness) {
	s, _ := open(t, h)
	as := artifactStore(t, s)
	a := newArtifact("acme", "acme's quote")
	putArtifact(t, as, a)
	for _, other := range []string{"globex", "acm", "acme ", "ACME", ""} {
		wantNoArtifact(t, as, other, a.SHA256)
	}
	g := a
	g.Tenant, g.CreatedBy, g.CreatedAt = "globex", "user:gina", base.Add(time.Minute)
	putArtifact(t, as, g)
	wantArtifact(t, as, a)
	wantArtifact(t, as, g)
}

func testArtifactInvalid(t *testing.T, h Harness) {
	s, _ := open(t, h)
	as := artifactStore(t, s)
	good := newArtifact("acme", "body")
	for _, tc := range []struct {
		name string
		edit func(*truth.Artifact)
	}{
		{"digest of other bytes", func(a *truth.Artifact) { a.SHA256 = truth.ArtifactDigest([]byte("other")) }},
		{"bytes changed", func(a *truth.Artifact) { a.Bytes = []byte("bodY") }},
		{"upper-case digest", func(a *truth.Artifact) { a.SHA256 = strings.ToUpper(a.SHA256) }},
		{"short digest", func(a *truth.Artifact) { a.SHA256 = a.SHA256[:63] }},
		{"empty digest", func(a *truth.Artifact) { a.SHA256 = "" }},
		{"no tenant", func(a *truth.Artifact) { a.Tenant = "" }},
		{"no media type", func(a *truth.Artifact) { a.MediaType = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			a.Bytes = append([]byte{}, good.Bytes...)
			tc.edit(&a)
			if err := as.PutArtifact(context.Background(), a); !errors.Is(err, truth.ErrInvalidArtifact) {
				t.Fatalf("PutArtifact: got %v, want ErrInvalidArtifact", err)
			}
			if a.Tenant != "" && truth.ValidDigest(a.SHA256) {
				wantNoArtifact(t, as, a.Tenant, a.SHA256)
			}
		})
	}
	wantNoArtifact(t, as, good.Tenant, good.SHA256)
}

// MaxArtifactBytes is accepted; one byte more is ErrArtifactTooLarge and
// stores nothing.
func testArtifactSizeLimit(t *testing.T, h Harness) {
	s, _ := open(t, h)
	as := artifactStore(t, s)
	big := bytes.Repeat([]byte("0123456789abcdef"), truth.MaxArtifactBytes/16)
	at := newArtifact("acme", string(big))
	putArtifact(t, as, at)
	wantArtifact(t, as, at)
	over := newArtifact("acme", string(big)+"x")
	err := as.PutArtifact(context.Background(), over)
	if !errors.Is(err, truth.ErrArtifactTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(truth.MaxArtifactBytes)) {
		t.Fatalf("PutArtifact of %d bytes: got %v, want ErrArtifactTooLarge naming the limit", len(over.Bytes), err)
	}
	wantNoArtifact(t, as, over.Tenant, over.SHA256)
}

// Racing puts of one artifact all succeed and exactly one principal's
// record stays; puts of different artifacts do not disturb each other.
func testArtifactConcurrent(t *testing.T, h Harness) {
	s, _ := open(t, h)
	as := artifactStore(t, s)
	const n = 8
	shared := newArtifact("acme", "shared document")
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			a := shared
			a.CreatedBy = fmt.Sprintf("user:%d", i)
			errs[i] = as.PutArtifact(context.Background(), a)
		}()
		go func() {
			defer wg.Done()
			errs[n+i] = as.PutArtifact(context.Background(), newArtifact("acme", fmt.Sprintf("own %d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	got, err := as.GetArtifact(context.Background(), shared.Tenant, shared.SHA256)
	if err != nil || !bytes.Equal(got.Bytes, shared.Bytes) || !strings.HasPrefix(got.CreatedBy, "user:") {
		t.Fatalf("shared artifact: %+v, %v", got, err)
	}
	for i := range n {
		wantArtifact(t, as, newArtifact("acme", fmt.Sprintf("own %d", i)))
	}
}

func testArtifactReopen(t *testing.T, h Harness) {
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	a := newArtifact("acme", "durable document")
	putArtifact(t, artifactStore(t, s), a)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.Open(t, loc)
	defer s.Close()
	wantArtifact(t, artifactStore(t, s), a)
}
