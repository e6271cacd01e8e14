package truth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// MaxArtifactBytes is the largest artifact a store accepts: 10 MiB.
const MaxArtifactBytes = 10 << 20

var (
	// ErrInvalidArtifact: an artifact breaks the rules of PutArtifact (see
	// Artifact.Validate): a missing tenant or media type, a digest that is
	// not 64 lower-case hex digits, or one that is not the SHA-256 of the
	// bytes.
	ErrInvalidArtifact = errors.New("truth: invalid artifact")
	// ErrArtifactTooLarge: the artifact exceeds MaxArtifactBytes.
	ErrArtifactTooLarge = errors.New("truth: artifact too large")
)

// Artifact is an immutable, content-addressed blob owned by one tenant (a
// rendered quote document, for example). Its identity is (Tenant, SHA256):
// the same bytes stored by two tenants are two artifacts, and neither tenant
// can read the other's.
type Artifact struct {
	Tenant    string
	SHA256    string // lower-case hex SHA-256 of Bytes (64 digits)
	MediaType string // e.g. "application/pdf"
	Bytes     []byte
	CreatedAt time.Time // stores keep microseconds (see TimerTime)
	CreatedBy string    // the principal that stored it first
}

// ArtifactStore is the artifact side of the truth store, implemented by both
// adapters. Artifacts are written outside commits: a grain refers to one by
// its digest only after PutArtifact returned, so a crash between the two
// leaves at most an unreferenced blob, never a reference without its bytes.
// All methods are safe for concurrent use.
type ArtifactStore interface {
	// PutArtifact stores a durably. It validates a first (errors wrap
	// ErrInvalidArtifact or ErrArtifactTooLarge). Storing an artifact that
	// the tenant already has (same Tenant and SHA256) is a no-op that
	// succeeds: the first MediaType, CreatedAt and CreatedBy stay.
	PutArtifact(ctx context.Context, a Artifact) error
	// GetArtifact returns the tenant's artifact with that digest, or an
	// error wrapping ErrNotFound, also when only another tenant has it.
	GetArtifact(ctx context.Context, tenant, sha256 string) (Artifact, error)
}

// ArtifactDigest returns the lower-case hex SHA-256 of b, the SHA256 of an
// artifact holding b.
func ArtifactDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ValidDigest reports whether s is 64 lower-case hex digits.
func ValidDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Validate checks the rules every store enforces on PutArtifact: a tenant, a
// media type, at most MaxArtifactBytes of bytes (ErrArtifactTooLarge), and a
// SHA256 of 64 lower-case hex digits equal to the digest of the bytes. Other
// errors wrap ErrInvalidArtifact.
func (a *Artifact) Validate() error {
	switch {
	case a.Tenant == "":
		return fmt.Errorf("%w: no tenant", ErrInvalidArtifact)
	case a.MediaType == "":
		return fmt.Errorf("%w: no media type", ErrInvalidArtifact)
	case len(a.Bytes) > MaxArtifactBytes:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrArtifactTooLarge, len(a.Bytes), MaxArtifactBytes)
	case !ValidDigest(a.SHA256):
		return fmt.Errorf("%w: digest %q is not 64 lower-case hex digits", ErrInvalidArtifact, a.SHA256)
	}
	if got := ArtifactDigest(a.Bytes); got != a.SHA256 {
		return fmt.Errorf("%w: digest %s does not match the bytes (%s)", ErrInvalidArtifact, a.SHA256, got)
	}
	return nil
}
