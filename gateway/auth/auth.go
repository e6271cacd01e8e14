// Package auth issues and verifies the bearer tokens of the gateway: JWTs
// signed with Ed25519 (alg "EdDSA"), issuer "grainline", carrying the caller's
// subject, tenant and roles. The tenant of a request comes only from its
// token.
package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grainline/grainline/grains"
)

// Issuer is the "iss" claim of every token Grainline mints and accepts.
const Issuer = "grainline"

// Leeway is the clock skew tolerated when checking "exp" and "iat".
const Leeway = 30 * time.Second

var (
	// ErrInvalidToken: the token is malformed, signed with a wrong key or
	// algorithm, from another issuer, or otherwise unacceptable.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenExpired: the token's "exp" has passed.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrMissingTenant: the token carries no usable "tenant" claim.
	ErrMissingTenant = errors.New("auth: token has no tenant")
)

// Claims are what a token says about its holder.
type Claims struct {
	Subject string
	Tenant  grains.TenantID
	Roles   []string
}

// Principal is the verified caller of one request.
type Principal struct {
	Subject string
	Tenant  grains.TenantID
	Roles   []string
}

// tokenClaims is the wire form of Claims.
type tokenClaims struct {
	Tenant string   `json:"tenant"`
	Roles  []string `json:"roles"`
	jwt.RegisteredClaims
}

// Mint signs a token for c, valid for ttl from now.
func Mint(key ed25519.PrivateKey, c Claims, ttl time.Duration) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("auth: mint: signing key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if err := ValidTenant(c.Tenant); err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	now := time.Now()
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	tc := tokenClaims{
		Tenant: string(c.Tenant),
		Roles:  roles,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tc).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return s, nil
}

// Verifier checks tokens against a fixed set of Ed25519 public keys; a token
// signed by any of them is accepted (so keys can be rotated by publishing the
// new one before signing with it). A Verifier is safe for concurrent use.
//
// Verified tokens are remembered (up to CacheSize of them) until they
// expire, so a client that sends the same token with every request pays
// for the signature check once. A remembered token is still refused once it
// has expired.
type Verifier struct {
	keys     jwt.VerificationKeySet
	roleKeys []RoleKey
	parser   *jwt.Parser
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]verified
}

// CacheSize bounds how many verified tokens a Verifier remembers.
const CacheSize = 10000

type verified struct {
	principal Principal
	expires   time.Time
}

// NewVerifier returns a Verifier trusting keys for every role. At least one
// key is required.
func NewVerifier(keys ...ed25519.PublicKey) (*Verifier, error) {
	return NewRoleVerifier(keys, nil)
}

// RoleKey is a public key trusted only for tokens whose roles are all among
// Roles: the key of a party that may act in one capacity, such as a billing
// system that reports billing results (role "billing"). A token it signs
// with any other role is refused.
type RoleKey struct {
	Key   ed25519.PublicKey
	Roles []string
}

// NewRoleVerifier returns a Verifier trusting keys for every role and each
// of roleKeys for its roles only. At least one key is required.
func NewRoleVerifier(keys []ed25519.PublicKey, roleKeys []RoleKey) (*Verifier, error) {
	if len(keys)+len(roleKeys) == 0 {
		return nil, errors.New("auth: verifier needs at least one public key")
	}
	set := jwt.VerificationKeySet{}
	for i, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: public key %d has %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
		set.Keys = append(set.Keys, k)
	}
	for i, rk := range roleKeys {
		if len(rk.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: role key %d has %d bytes, want %d", i, len(rk.Key), ed25519.PublicKeySize)
		}
		if len(rk.Roles) == 0 {
			return nil, fmt.Errorf("auth: role key %d names no role", i)
		}
	}
	v := &Verifier{now: time.Now, cache: make(map[string]verified), keys: set, roleKeys: roleKeys}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v, nil
}

// Verify checks token and returns its principal. Errors wrap ErrInvalidToken,
// ErrTokenExpired or ErrMissingTenant.
func (v *Verifier) Verify(token string) (Principal, error) {
	now := v.now()
	v.mu.Lock()
	hit, ok := v.cache[token]
	if ok && !now.Before(hit.expires.Add(Leeway)) {
		delete(v.cache, token)
		ok = false
	}
	v.mu.Unlock()
	if ok {
		return hit.principal, nil
	}
	p, exp, err := v.verify(token)
	if err != nil {
		return Principal{}, err
	}
	v.mu.Lock()
	if len(v.cache) >= CacheSize {
		// Make room: forget an arbitrary tenth (map order is random).
		n := 0
		for k := range v.cache {
			delete(v.cache, k)
			if n++; n >= CacheSize/10 {
				break
			}
		}
	}
	v.cache[token] = verified{principal: p, expires: exp}
	v.mu.Unlock()
	return p, nil
}

// verify checks the signature and claims of token: against the keys
// trusted for every role, then against each role key, whose token may carry
// only that key's roles.
func (v *Verifier) verify(token string) (Principal, time.Time, error) {
	var tc tokenClaims
	err := jwt.ErrTokenSignatureInvalid
	if len(v.keys.Keys) > 0 {
		_, err = v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return v.keys, nil })
	}
	for _, rk := range v.roleKeys {
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break
		}
		tc = tokenClaims{}
		if _, err = v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return rk.Key, nil }); err == nil {
			for _, r := range tc.Roles {
				if !slices.Contains(rk.Roles, r) {
					return Principal{}, time.Time{}, fmt.Errorf("%w: its signing key is trusted for role %s only, not %q",
						ErrInvalidToken, strings.Join(rk.Roles, ", "), r)
				}
			}
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, time.Time{}, ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Principal{}, time.Time{}, fmt.Errorf("%w: signature or algorithm not accepted", ErrInvalidToken)
	case err != nil:
		return Principal{}, time.Time{}, fmt.Errorf("%w: %s", ErrInvalidToken, reason(err))
	}
	if tc.Tenant == "" {
		return Principal{}, time.Time{}, ErrMissingTenant
	}
	if err := ValidTenant(grains.TenantID(tc.Tenant)); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrMissingTenant, err)
	}
	return Principal{Subject: tc.Subject, Tenant: grains.TenantID(tc.Tenant), Roles: tc.Roles}, tc.ExpiresAt.Time, nil
}

// reason names what was wrong with a token without echoing its content.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	default:
		return "rejected"
	}
}

// ValidTenant reports whether t can name a tenant: 1 to 64 characters of
// [A-Za-z0-9_-]. Tenants appear in NATS subjects and store keys, so dots,
// wildcards and whitespace are refused.
func ValidTenant(t grains.TenantID) error {
	if len(t) == 0 || len(t) > 64 {
		return fmt.Errorf("tenant must have 1 to 64 characters, got %d", len(t))
	}
	if strings.IndexFunc(string(t), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) >= 0 {
		return fmt.Errorf("tenant %q has characters outside [A-Za-z0-9_-]", t)
	}
	return nil
}
