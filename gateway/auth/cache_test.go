package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"
)

// A remembered token is answered from the cache but still refused once it
// expires; a forged token is never remembered.
func TestVerifierCacheHonoursExpiry(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	v, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	var mu sync.Mutex
	v.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	tok, err := Mint(key, Claims{Subject: "s", Tenant: "acme", Roles: []string{"sales"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		p, err := v.Verify(tok)
		if err != nil || p.Tenant != "acme" {
			t.Fatalf("verify %d: %+v %v", i, p, err)
		}
	}
	if len(v.cache) != 1 {
		t.Fatalf("cache holds %d tokens, want 1", len(v.cache))
	}
	mu.Lock()
	clock = clock.Add(time.Minute + Leeway + time.Second)
	mu.Unlock()
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired cached token: %v, want ErrTokenExpired", err)
	}

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := Mint(otherKey, Claims{Subject: "s", Tenant: "acme"}, time.Hour)
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged token %d: %v", i, err)
		}
	}
	if _, ok := v.cache[forged]; ok {
		t.Fatal("a forged token was cached")
	}
}

func TestVerifierCacheIsBounded(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	v, _ := NewVerifier(pub)
	for i := 0; i < CacheSize+50; i++ {
		tok, _ := Mint(key, Claims{Subject: string(rune('a' + i%26)), Tenant: "acme", Roles: []string{time.Duration(i).String()}}, time.Hour)
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.cache) > CacheSize {
		t.Fatalf("cache holds %d tokens, more than %d", len(v.cache), CacheSize)
	}
}
