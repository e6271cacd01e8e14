package dispatch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
)

// crockford is Crockford's base32 alphabet in lower case, without padding.
var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// QuoteIDPrefix starts every quote id the gateway assigns.
const QuoteIDPrefix = "q-"

// NewQuoteID returns a fresh quote id: "q-" and 26 characters of lower-case
// Crockford base32 over 48 bits of Unix milliseconds and 80 random bits, so
// ids sort by creation time.
func NewQuoteID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to the
		// clock so an id is still unique per nanosecond.
		binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
	}
	return QuoteIDPrefix + crockford.EncodeToString(b[:])[:26]
}

// DeriveQuoteID returns the quote id for a create carrying idempotency key in
// tenant: "q-" and the first 26 base32 characters of
// sha256(tenant + "\x00" + key). A replayed create reaches the same grain,
// which answers with the first result.
func DeriveQuoteID(tenant grains.TenantID, key string) string {
	sum := sha256.Sum256([]byte(string(tenant) + "\x00" + key))
	return QuoteIDPrefix + crockford.EncodeToString(sum[:])[:26]
}

// ValidID checks an aggregate id taken from a request: 1 to 128 characters
// of [A-Za-z0-9._~-].
func ValidID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return grains.Errorf(grains.CodeBadRequest, "id must have 1 to 128 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-') {
			return grains.Errorf(grains.CodeBadRequest, "id has a character outside [A-Za-z0-9._~-]")
		}
	}
	return nil
}

// ClientKeyPrefix puts clients' idempotency keys in a namespace of their
// own: the platform's own commands carry keys derived from event and task
// ids ("quote-accepted:...", "task:..."), and a client that sent such a key
// first would make the platform's command look like a reused key.
const ClientKeyPrefix = "api:"

// ClientKey is the key under which a client's Idempotency-Key is recorded;
// "" stays "".
func ClientKey(key string) string {
	if key == "" {
		return ""
	}
	return ClientKeyPrefix + key
}

// ParseIdempotencyKey validates an Idempotency-Key value: empty means none;
// otherwise 1 to 255 printable ASCII characters.
func ParseIdempotencyKey(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) > 255 || !printable(v) {
		return "", grains.Errorf(grains.CodeBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	return v, nil
}

// ParseIfMatch parses an If-Match value of the form "<revision>" (a quoted
// positive integer, as in ETag). Empty means no precondition (0).
func ParseIfMatch(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	bad := grains.Errorf(grains.CodeBadRequest, `If-Match must be a quoted revision such as "3"`)
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, bad
	}
	var n int64
	for _, c := range v[1 : len(v)-1] {
		if c < '0' || c > '9' || n > (1<<62)/10 {
			return 0, bad
		}
		n = n*10 + int64(c-'0')
	}
	if n <= 0 {
		return 0, bad
	}
	return n, nil
}

// ETag renders a revision as an entity tag: "<revision>".
func ETag(revision int64) string { return fmt.Sprintf("%q", fmt.Sprint(revision)) }

// CorrelationID returns v when it is a usable correlation id (1 to 128
// printable ASCII characters without spaces) and a fresh random one
// otherwise.
func CorrelationID(v string) string {
	if v != "" && len(v) <= 128 && printable(v) && !strings.Contains(v, " ") {
		return v
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("c-%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
