package dispatch

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
)

var idPattern = regexp.MustCompile(`^q-[0-9a-hjkmnp-tv-z]{26}$`)

func TestNewQuoteIDFormatAndOrder(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewQuoteID()
		if !idPattern.MatchString(id) {
			t.Fatalf("id %q has the wrong shape", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if i%250 == 0 {
			if prev != "" && id[:12] < prev[:12] {
				t.Fatalf("ids go back in time: %s after %s", id, prev)
			}
			prev = id
			time.Sleep(2 * time.Millisecond) // the time prefix has millisecond resolution
		}
	}
}

func TestDeriveQuoteID(t *testing.T) {
	a := DeriveQuoteID("t1", "key-1")
	if !idPattern.MatchString(a) {
		t.Fatalf("derived id %q has the wrong shape", a)
	}
	if DeriveQuoteID("t1", "key-1") != a {
		t.Fatal("derivation is not deterministic")
	}
	if DeriveQuoteID("t2", "key-1") == a || DeriveQuoteID("t1", "key-2") == a {
		t.Fatal("tenant or key does not change the id")
	}
	// The separator keeps ("ab","c") and ("a","bc") apart.
	if DeriveQuoteID("ab", "c") == DeriveQuoteID("a", "bc") {
		t.Fatal("tenant/key boundary is ambiguous")
	}
}

func TestParseIfMatch(t *testing.T) {
	good := map[string]int64{"": 0, `"1"`: 1, `"42"`: 42}
	for in, want := range good {
		if got, err := ParseIfMatch(in); err != nil || got != want {
			t.Errorf("ParseIfMatch(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{`3`, `"0"`, `"-1"`, `"x"`, `W/"3"`, `*`, `""`, `"99999999999999999999999"`} {
		if _, err := ParseIfMatch(in); grains.CodeOf(err) != grains.CodeBadRequest {
			t.Errorf("ParseIfMatch(%q) err = %v, want bad_request", in, err)
		}
	}
	if ETag(7) != `"7"` {
		t.Errorf("ETag(7) = %s", ETag(7))
	}
}

func TestParseIdempotencyKey(t *testing.T) {
	if k, err := ParseIdempotencyKey("abc-123"); err != nil || k != "abc-123" {
		t.Errorf("got %q, %v", k, err)
	}
	if _, err := ParseIdempotencyKey(strings.Repeat("a", 255)); err != nil {
		t.Error(err)
	}
	for _, in := range []string{strings.Repeat("a", 256), "tab\there", "ünï"} {
		if _, err := ParseIdempotencyKey(in); grains.CodeOf(err) != grains.CodeBadRequest {
			t.Errorf("ParseIdempotencyKey(%q) accepted", in)
		}
	}
}

func TestCorrelationID(t *testing.T) {
	if CorrelationID("abc") != "abc" {
		t.Error("valid id not kept")
	}
	for _, in := range []string{"", "has space", strings.Repeat("x", 129), "ctl\x01"} {
		got := CorrelationID(in)
		if got == in || len(got) != 32 {
			t.Errorf("CorrelationID(%q) = %q", in, got)
		}
	}
}

func TestObjectPayload(t *testing.T) {
	for in, want := range map[string]string{"": "{}", "  ": "{}", ` {"a":1} `: `{"a":1}`} {
		got, err := ObjectPayload([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("ObjectPayload(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"[]", "1", `"s"`, "{", `{"a":1} {}`, "null"} {
		if _, err := ObjectPayload([]byte(in)); grains.CodeOf(err) != grains.CodeBadRequest {
			t.Errorf("ObjectPayload(%q) accepted", in)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	v, err := auth.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := auth.Mint(priv, auth.Claims{Subject: "u", Tenant: "demo"}, time.Minute)
	if p, err := Authenticate(v, "Bearer "+tok); err != nil || p.Tenant != "demo" {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if _, err := Authenticate(v, "bearer "+tok); err != nil {
		t.Fatalf("scheme is case-insensitive: %v", err)
	}
	expired, _ := auth.Mint(priv, auth.Claims{Subject: "u", Tenant: "demo"}, -time.Hour)
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", tok, "Bearer junk", "Bearer " + expired} {
		if _, err := Authenticate(v, h); grains.CodeOf(err) != grains.CodeUnauthenticated {
			t.Errorf("Authenticate(%.20q) = %v, want unauthenticated", h, err)
		}
	}
}

func TestDoRoutesCommandsWithPrincipal(t *testing.T) {
	g := fakegrains.New()
	d, err := New(Deps{Sender: g, Reader: g, Orders: g, NewID: func() string { return "q-fixed" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := auth.Principal{Subject: "alice", Tenant: "demo", Roles: []string{"sales"}}
	r := d.Do(ctx, Request{Principal: p, Kind: grains.KindQuote, Command: CommandCreate,
		Payload: []byte(`{"currency":"EUR"}`), CorrelationID: "c-1"})
	if r.Status != 201 || r.ID != "q-fixed" || r.Location != "/v1/quotes/q-fixed" || r.ETag != `"1"` {
		t.Fatalf("create reply = %+v", r)
	}
	sent := g.Sent()
	c := sent[0]
	if c.Tenant != "demo" || c.Actor != "alice" || c.Roles[0] != "sales" || c.CorrelationID != "c-1" || c.Name != "create" {
		t.Fatalf("command = %+v", c)
	}
	// Unknown commands and kinds are not_found before reaching a grain.
	for _, req := range []Request{
		{Principal: p, Kind: grains.KindQuote, ID: "q-fixed", Command: "explode"},
		{Principal: p, Kind: "invoice", ID: "x", Command: "get"},
		{Principal: p, Kind: grains.KindOrder, Command: CommandCreate},
	} {
		if r := d.Do(ctx, req); r.Status != 404 || r.Code != grains.CodeNotFound {
			t.Errorf("Do(%+v) = %d %s", req, r.Status, r.Body)
		}
	}
	if len(g.Sent()) != 1 {
		t.Fatal("rejected requests reached a grain")
	}
	// Transient errors are 503 and internal ones are 500 without detail.
	g.SetHook(func(context.Context, call.Command) error { return context.DeadlineExceeded })
	if r := d.Do(ctx, Request{Principal: p, Kind: grains.KindQuote, ID: "q-fixed", Command: "submit"}); r.Status != 503 || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("deadline reply = %+v", r)
	}
	g.SetHook(func(context.Context, call.Command) error { return errors.New("secret stack detail") })
	r = d.Do(ctx, Request{Principal: p, Kind: grains.KindQuote, ID: "q-fixed", Command: "submit"})
	if r.Status != 500 || strings.Contains(string(r.Body), "secret") {
		t.Errorf("internal reply = %d %s", r.Status, r.Body)
	}
	var prob map[string]any
	if err := json.Unmarshal(r.Body, &prob); err != nil || prob["code"] != "internal" {
		t.Errorf("problem body = %s", r.Body)
	}
}

// A client's key cannot take the place of a key the platform derives for
// its own commands ("quote-accepted:<event>", "task:<id>:<attempt>:result").
func TestClientIdempotencyKeysHaveTheirOwnNamespace(t *testing.T) {
	g := fakegrains.New()
	d, err := New(Deps{Sender: g, Reader: g, Orders: g})
	if err != nil {
		t.Fatal(err)
	}
	p := auth.Principal{Subject: "mallory", Tenant: "demo", Roles: []string{"sales"}}
	systemKey := "quote-accepted:demo/quote/q-1/6/0"
	r := d.Do(context.Background(), Request{Principal: p, Kind: grains.KindQuote, Command: CommandCreate,
		Payload: []byte(`{"currency":"EUR"}`), IdempotencyKey: systemKey})
	if r.Status != 201 {
		t.Fatalf("create = %+v", r)
	}
	if got := g.Sent()[0].IdempotencyKey; got != ClientKeyPrefix+systemKey {
		t.Fatalf("recorded key = %q, want it under %q", got, ClientKeyPrefix)
	}
	if ClientKey("") != "" {
		t.Fatal("an absent key must stay absent")
	}
}
