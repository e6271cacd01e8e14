package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func newVerifier(t *testing.T, keys ...ed25519.PublicKey) *Verifier {
	t.Helper()
	v, err := NewVerifier(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rawToken signs arbitrary claims with priv, bypassing Mint's checks.
func rawToken(t *testing.T, priv ed25519.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMintVerifyRoundTrip(t *testing.T) {
	pub, priv := newKey(t)
	tok, err := Mint(priv, Claims{Subject: "alice", Tenant: "demo", Roles: []string{"sales", "approver"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newVerifier(t, pub).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || p.Tenant != "demo" || strings.Join(p.Roles, ",") != "sales,approver" {
		t.Fatalf("principal = %+v", p)
	}
	// The wire claims are the documented ones.
	parts := strings.Split(tok, ".")
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sub", "tenant", "roles", "iss", "iat", "exp"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %q missing in %s", k, body)
		}
	}
	if m["iss"] != "grainline" {
		t.Errorf("iss = %v", m["iss"])
	}
}

func TestVerifierAcceptsAnyConfiguredKey(t *testing.T) {
	pubOld, privOld := newKey(t)
	pubNew, privNew := newKey(t)
	v := newVerifier(t, pubOld, pubNew)
	for _, priv := range []ed25519.PrivateKey{privOld, privNew} {
		tok, err := Mint(priv, Claims{Subject: "s", Tenant: "t1"}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
}

func TestRoleKeySignsOnlyItsRoles(t *testing.T) {
	pubUser, privUser := newKey(t)
	pubBilling, privBilling := newKey(t)
	_, privStranger := newKey(t)
	v, err := NewRoleVerifier([]ed25519.PublicKey{pubUser}, []RoleKey{{Key: pubBilling, Roles: []string{"billing"}}})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(priv ed25519.PrivateKey, roles ...string) string {
		tok, err := Mint(priv, Claims{Subject: "s", Tenant: "t1", Roles: roles}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, token, wantErr string
	}{
		{"billing key, billing role", mint(privBilling, "billing"), ""},
		{"billing key, no role", mint(privBilling), ""},
		{"user key, any role", mint(privUser, "sales", "billing", "ops"), ""},
		{"billing key, ops role", mint(privBilling, "billing", "ops"), `trusted for role billing only, not "ops"`},
		{"billing key, sales role", mint(privBilling, "sales"), `not "sales"`},
		{"unknown key", mint(privStranger, "billing"), "signature or algorithm not accepted"},
	} {
		p, err := v.Verify(tc.token)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr == "" && p.Tenant != "t1":
			t.Errorf("%s: principal %+v", tc.name, p)
		case tc.wantErr != "" && (!errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want ErrInvalidToken containing %q", tc.name, err, tc.wantErr)
		}
	}
	// Only role keys: the verifier still works; a role key needs a role.
	only, err := NewRoleVerifier(nil, []RoleKey{{Key: pubBilling, Roles: []string{"billing"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := only.Verify(mint(privBilling, "billing")); err != nil {
		t.Fatalf("role keys only: %v", err)
	}
	if _, err := NewRoleVerifier(nil, []RoleKey{{Key: pubBilling}}); err == nil {
		t.Fatal("a role key without a role was accepted")
	}
}

func TestVerifyRejects(t *testing.T) {
	pub, priv := newKey(t)
	_, otherPriv := newKey(t)
	v := newVerifier(t, pub)
	now := time.Now()
	valid := jwt.MapClaims{"sub": "s", "tenant": "demo", "roles": []string{}, "iss": "grainline", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	hs256 := func() string {
		// An HS256 token whose HMAC secret is the public key: the classic
		// algorithm-confusion attack.
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		b, _ := json.Marshal(valid)
		p := base64.RawURLEncoding.EncodeToString(b)
		mac := hmac.New(sha256.New, pub)
		mac.Write([]byte(h + "." + p))
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	none := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		b, _ := json.Marshal(valid)
		return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	}
	tampered := func() string {
		tok := rawToken(t, priv, valid)
		parts := strings.Split(tok, ".")
		b, _ := json.Marshal(with("tenant", "other"))
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrInvalidToken},
		{"garbage", "not.a.jwt", ErrInvalidToken},
		{"bad signature (other key)", rawToken(t, otherPriv, valid), ErrInvalidToken},
		{"tampered payload", tampered(), ErrInvalidToken},
		{"alg none", none(), ErrInvalidToken},
		{"alg HS256", hs256(), ErrInvalidToken},
		{"expired", rawToken(t, priv, with("exp", now.Add(-time.Hour).Unix())), ErrTokenExpired},
		{"no exp", rawToken(t, priv, with("exp", nil)), ErrInvalidToken},
		{"wrong issuer", rawToken(t, priv, with("iss", "someone-else")), ErrInvalidToken},
		{"issued in the future", rawToken(t, priv, with("iat", now.Add(time.Hour).Unix())), ErrInvalidToken},
		{"missing tenant", rawToken(t, priv, with("tenant", nil)), ErrMissingTenant},
		{"empty tenant", rawToken(t, priv, with("tenant", "")), ErrMissingTenant},
		{"tenant with subject wildcard", rawToken(t, priv, with("tenant", "a.>")), ErrMissingTenant},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", p, err, tc.want)
			}
		})
	}
}

func TestMintRejectsBadInput(t *testing.T) {
	_, priv := newKey(t)
	if _, err := Mint(priv, Claims{Subject: "s"}, time.Hour); err == nil {
		t.Error("mint without tenant succeeded")
	}
	if _, err := Mint(priv[:10], Claims{Subject: "s", Tenant: "demo"}, time.Hour); err == nil {
		t.Error("mint with a short key succeeded")
	}
	if _, err := NewVerifier(); err == nil {
		t.Error("NewVerifier without keys succeeded")
	}
}

func TestLoadOrCreateDevKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys", "dev-signing-key.pem")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode = %v, want 0700", di.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("key file is not PKCS#8 PEM: %q", raw[:min(len(raw), 40)])
	}
	k2, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second load returned a different key")
	}
	// A token minted with the dev key verifies with its public half.
	tok, err := Mint(k2, Claims{Subject: "dev", Tenant: "demo"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newVerifier(t, k1.Public().(ed25519.PublicKey)).Verify(tok); err != nil {
		t.Fatal(err)
	}
	// Only the key file is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("keys dir holds %d entries, want 1", len(entries))
	}
}

func TestLoadOrCreateDevKeyConcurrentFirstUseAgrees(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = LoadOrCreateDevKey(dir)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatalf("caller %d got a different key", i)
		}
	}
}

func TestLoadOrCreateDevKeyRefusesLooseMode(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateDevKey(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DevKeyPath)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDevKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose key mode accepted: %v", err)
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDevKey(dir); err == nil {
		t.Fatal("corrupt key accepted")
	}
}

func TestLoadPublicKeys(t *testing.T) {
	pub1, priv1 := newKey(t)
	pub2, _ := newKey(t)
	dir := t.TempDir()
	p1, err := EncodePublicKey(pub1)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := EncodePublicKey(pub2)
	f1 := filepath.Join(dir, "a.pem")
	f2 := filepath.Join(dir, "b.pem")
	os.WriteFile(f1, p1, 0o644)
	os.WriteFile(f2, append(p2, p1...), 0o644)
	keys, err := LoadPublicKeys(f1, f2)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || !keys[0].Equal(pub1) || !keys[1].Equal(pub2) {
		t.Fatalf("keys = %d", len(keys))
	}
	tok, _ := Mint(priv1, Claims{Subject: "s", Tenant: "demo"}, time.Minute)
	if _, err := newVerifier(t, keys...).Verify(tok); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("nothing"), 0o644)
	if _, err := LoadPublicKeys(bad); err == nil {
		t.Error("file without PEM accepted")
	}
	if _, err := LoadPublicKeys(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("missing file accepted")
	}
}
