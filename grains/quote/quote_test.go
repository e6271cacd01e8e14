package quote_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func env(roles ...string) grains.Env {
	return grains.Env{Tenant: "demo", ID: "q-1", Actor: "alice", Roles: roles, Now: t0, Catalog: catalog.Demo()}
}

func mustDecode(t *testing.T, name, payload string) grains.Command {
	t.Helper()
	c, err := quote.DecodeCommand(name, []byte(payload))
	if err != nil {
		t.Fatalf("decode %s %s: %v", name, payload, err)
	}
	return c
}

func step(t *testing.T, s quote.State, name, payload string) quote.State {
	t.Helper()
	evs, err := quote.Decide(s, mustDecode(t, name, payload), env("sales", "approver"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(evs) == 0 {
		t.Fatalf("%s: no events", name)
	}
	return quote.Behavior.Fold(s, evs)
}

// states returns a quote in every status (and inProgress both unpriced and
// priced).
func states(t *testing.T) map[string]quote.State {
	created := step(t, quote.State{}, "create", `{"customerId":"c-1","currency":"EUR"}`)
	unpriced := step(t, created, "addLine", `{"offeringId":"sdwan-edge-m","quantity":2}`)
	priced := step(t, unpriced, "price", `{}`)
	pending := step(t, priced, "submit", `{}`)
	approved := step(t, pending, "approve", `{}`)
	return map[string]quote.State{
		"none":       {},
		"unpriced":   unpriced,
		"priced":     priced,
		"pending":    pending,
		"approved":   approved,
		"accepted":   step(t, approved, "accept", `{}`),
		"rejected":   step(t, pending, "reject", `{"reason":"r"}`),
		"cancelled":  step(t, unpriced, "cancel", `{}`),
		"cancelled2": step(t, approved, "cancel", `{"reason":"r"}`),
		"expired":    expireStep(t, approved),
	}
}

// expireStep sends expire as the timer does.
func expireStep(t *testing.T, s quote.State) quote.State {
	t.Helper()
	e := env("system")
	e.Actor = "timer"
	evs, err := quote.Decide(s, mustDecode(t, "expire", `{}`), e)
	if err != nil || len(evs) != 1 {
		t.Fatalf("expire: %v %v", evs, err)
	}
	return quote.Behavior.Fold(s, evs)
}

var payloads = map[string]string{
	"expire":     `{}`,
	"create":     `{"customerId":"c-1","currency":"EUR"}`,
	"addLine":    `{"offeringId":"dia-1g","quantity":1}`,
	"removeLine": `{"lineId":"1"}`,
	"price":      `{}`,
	"submit":     `{}`,
	"approve":    `{}`,
	"reject":     `{"reason":"r"}`,
	"accept":     `{}`,
	"cancel":     `{"reason":"r"}`,

	"setLineDiscount":    `{"lineId":"1","percent":"10"}`,
	"setQuoteDiscount":   `{"amount":"100.00"}`,
	"clearQuoteDiscount": `{}`,
	"setCharacteristics": `{"lineId":"1","characteristics":{"wanPorts":3}}`,
	"attachDocument":     `{"revision":1,"sha256":"` + strings.Repeat("ab", 32) + `","artifactId":"a-1"}`,
}

// TestTransitionMatrix runs every command against a quote in every state,
// with every role, so only the state machine decides. "ok" means events,
// "noop" neither events nor error; anything else is the error code.
func TestTransitionMatrix(t *testing.T) {
	allowed := map[string]map[string]string{
		"none": {"create": "ok"},
		"unpriced": {"addLine": "ok", "removeLine": "ok", "price": "ok", "cancel": "ok", "expire": "ok",
			"setLineDiscount": "ok", "setQuoteDiscount": "ok", "clearQuoteDiscount": "noop", "setCharacteristics": "ok"},
		"priced": {"addLine": "ok", "removeLine": "ok", "price": "noop", "submit": "ok", "cancel": "ok", "expire": "ok",
			"setLineDiscount": "ok", "setQuoteDiscount": "ok", "clearQuoteDiscount": "noop", "setCharacteristics": "ok"},
		"pending": {"approve": "ok", "reject": "ok", "cancel": "ok", "expire": "ok",
			"addLine": "ok", "removeLine": "ok", "setLineDiscount": "ok", "setQuoteDiscount": "ok", "clearQuoteDiscount": "noop", "setCharacteristics": "ok"},
		"approved": {"accept": "ok", "cancel": "ok", "expire": "ok", "attachDocument": "ok",
			"addLine": "ok", "removeLine": "ok", "setLineDiscount": "ok", "setQuoteDiscount": "ok", "clearQuoteDiscount": "noop", "setCharacteristics": "ok"},
		"accepted": {"expire": "noop"},
		"rejected": {"expire": "noop",
			"addLine": "ok", "removeLine": "ok", "setLineDiscount": "ok", "setQuoteDiscount": "ok", "clearQuoteDiscount": "noop", "setCharacteristics": "ok"},
		"cancelled":  {"expire": "noop"},
		"cancelled2": {"expire": "noop"},
		"expired":    {"expire": "noop", "accept": "quote_expired"},
	}
	for stName, s := range states(t) {
		for _, name := range quote.Commands {
			want, ok := allowed[stName][name]
			switch {
			case ok:
			case stName == "none":
				want = "not_found"
			case name == "create":
				want = "already_exists"
			default:
				want = "invalid_transition"
			}
			evs, err := quote.Decide(s, mustDecode(t, name, payloads[name]), env("sales", "approver", "system"))
			got := "ok"
			switch {
			case err != nil:
				got = string(grains.CodeOf(err))
			case len(evs) == 0:
				got = "noop"
			}
			if got != want {
				t.Errorf("%s × %s = %s (%v), want %s", stName, name, got, err, want)
			}
			if got == "invalid_transition" && !strings.Contains(err.Error(), string(s.Status)) {
				t.Errorf("%s × %s: message %q does not name the state", stName, name, err)
			}
			if got == "invalid_transition" && !strings.Contains(err.Error(), name) {
				t.Errorf("%s × %s: message %q does not name the command", stName, name, err)
			}
		}
	}
}

// TestRolesAreChecked sends every command without its role, in every state.
func TestRolesAreChecked(t *testing.T) {
	need := map[string]string{"approve": "approver", "reject": "approver", "expire": "system"}
	for stName, s := range states(t) {
		for _, name := range quote.Commands {
			role := need[name]
			if role == "" {
				role = "sales"
			}
			other := "system"
			if role == "system" {
				other = "ops"
			}
			for _, roles := range [][]string{nil, {"ops"}, {other}, {map[string]string{"sales": "approver", "approver": "sales", "system": "sales"}[role]}, {"sales", "approver"}} {
				if slices.Contains(roles, role) || (role == "approver" && slices.Contains(roles, "approver")) {
					continue
				}
				_, err := quote.Decide(s, mustDecode(t, name, payloads[name]), env(roles...))
				if grains.CodeOf(err) != grains.CodeForbidden {
					t.Errorf("%s × %s with roles %v: %v, want forbidden", stName, name, roles, err)
				}
			}
		}
	}
}

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		name, cmd, payload string
		code               grains.Code
		pointers           []string
	}{
		{"unknown", "discount", `{}`, grains.CodeBadRequest, nil},
		{"bad JSON", "create", `{"customerId":`, grains.CodeBadRequest, nil},
		{"garbage", "submit", `nope`, grains.CodeBadRequest, []string{""}},
		{"array", "submit", `[]`, grains.CodeBadRequest, []string{""}},
		{"unknown field on empty command", "submit", `{"force":true}`, grains.CodeBadRequest, []string{"/force"}},
		{"empty payload", "submit", ``, "", nil},
		{"null payload", "approve", `null`, grains.CodeBadRequest, []string{""}},
		{"create missing", "create", `{"customerName":"x"}`, grains.CodeValidation, []string{"/customerId", "/currency"}},
		{"create bad currency", "create", `{"customerId":"c","currency":"euro"}`, grains.CodeValidation, []string{"/currency"}},
		{"create currency type", "create", `{"customerId":"c","currency":978}`, grains.CodeBadRequest, []string{"/currency"}},
		{"create", "create", `{"customerId":"c","currency":"EUR"}`, "", nil},
		{"create JPY", "create", `{"customerId":"c","currency":"JPY"}`, "", nil},
		{"addLine missing", "addLine", `{}`, grains.CodeValidation, []string{"/offeringId", "/quantity"}},
		{"addLine negative", "addLine", `{"offeringId":"x","quantity":-1}`, grains.CodeValidation, []string{"/quantity"}},
		{"addLine huge", "addLine", `{"offeringId":"x","quantity":99999999999999999999}`, grains.CodeBadRequest, []string{"/quantity"}},
		{"addLine", "addLine", `{"offeringId":"x","quantity":5}`, "", nil},
		{"removeLine missing", "removeLine", `{}`, grains.CodeValidation, []string{"/lineId"}},
		{"removeLine number", "removeLine", `{"lineId":1}`, grains.CodeBadRequest, []string{"/lineId"}},
		{"reject missing reason", "reject", `{}`, grains.CodeValidation, []string{"/reason"}},
		{"reject", "reject", `{"reason":"no"}`, "", nil},
		{"cancel without reason", "cancel", `{}`, "", nil},
		{"accept trailing", "accept", `{} x`, grains.CodeBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := quote.DecodeCommand(tt.cmd, []byte(tt.payload))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if cmd.CommandName() != tt.cmd {
					t.Fatalf("decoded %s, want %s", cmd.CommandName(), tt.cmd)
				}
				return
			}
			var de *grains.Error
			if !errors.As(err, &de) || de.Code != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if cmd != nil {
				t.Fatalf("a command came back with the error: %#v", cmd)
			}
			if tt.pointers != nil {
				var got []string
				for _, v := range de.Violations {
					got = append(got, v.Pointer)
				}
				if !reflect.DeepEqual(got, tt.pointers) {
					t.Fatalf("pointers %q, want %q", got, tt.pointers)
				}
			}
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	if _, err := quote.DecodeEvent("QuoteVanished", []byte(`{}`)); grains.CodeOf(err) != grains.CodeBadRequest {
		t.Fatalf("unknown event: %v", err)
	}
	if _, err := quote.DecodeEvent(quote.EvPriced, []byte(`{"lines":3}`)); grains.CodeOf(err) != grains.CodeBadRequest {
		t.Fatalf("bad payload: %v", err)
	}
}

// TestAcceptedIsTheOrderCreateCommand checks the contract between the two
// grains: QuoteAccepted's payload has exactly the create-order fields, and
// fed to the order grain it creates the order once.
func TestAcceptedIsTheOrderCreateCommand(t *testing.T) {
	approved := states(t)["approved"]
	evs, err := quote.Decide(approved, mustDecode(t, "accept", `{}`), env("sales"))
	if err != nil || len(evs) != 1 {
		t.Fatalf("accept: %v %v", evs, err)
	}
	payload, err := json.Marshal(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"acceptedAt", "acceptedBy", "channel", "currency", "customerId", "customerName", "lines", "monthlyTotal", "oneTimeTotal", "orderId", "priceHash", "quoteId", "revision"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("QuoteAccepted fields %v, want %v", keys, want)
	}
	stateLines, _ := json.Marshal(approved.Lines)
	if string(m["lines"]) != string(stateLines) {
		t.Fatalf("lines differ from the quote's:\n%s\n%s", m["lines"], stateLines)
	}

	cmd, err := order.DecodeCommand(order.CmdCreate, payload)
	if err != nil {
		t.Fatalf("order create from QuoteAccepted: %v", err)
	}
	oenv := grains.Env{Tenant: "demo", ID: order.IDForQuote("q-1"), Actor: "intake", Roles: []string{"system"}, Now: t0.Add(time.Minute)}
	oevs, err := order.Decide(order.State{}, cmd, oenv)
	if err != nil || len(oevs) != 2 {
		t.Fatalf("order create: %v %v", oevs, err)
	}
	o := order.Behavior.Fold(order.State{}, oevs)
	if o.QuoteID != "q-1" || o.PriceHash != approved.Price.Hash || o.OneTimeTotal != approved.Price.OneTimeTotal ||
		!reflect.DeepEqual(o.Lines, approved.Lines) || o.Status != order.StatusInProgress {
		t.Fatalf("order does not carry the quote: %+v", o)
	}
	// The same event again creates nothing.
	again, err := order.Decide(o, cmd, oenv)
	if err != nil || len(again) != 0 {
		t.Fatalf("redelivered QuoteAccepted: %v %v", again, err)
	}
}

// TestApprovalRecordsTheHashOfThePriceApproved checks invariant 3.
func TestApprovalRecordsTheHashOfThePriceApproved(t *testing.T) {
	s := states(t)
	if s["approved"].ApprovedPriceHash == "" || s["approved"].ApprovedPriceHash != s["priced"].Price.Hash {
		t.Fatalf("approved hash %q, priced hash %q", s["approved"].ApprovedPriceHash, s["priced"].Price.Hash)
	}
	// Same lines in another quote give the same price hash: the hash is a
	// function of the priced inputs.
	other := step(t, step(t, step(t, quote.State{}, "create", `{"customerId":"c-2","currency":"EUR"}`),
		"addLine", `{"offeringId":"sdwan-edge-m","quantity":2}`), "price", `{}`)
	if other.Price.Hash != s["priced"].Price.Hash {
		t.Fatalf("same lines, different hash")
	}
	more := step(t, step(t, s["priced"], "addLine", `{"offeringId":"dia-1g","quantity":1}`), "price", `{}`)
	if more.Price.Hash == s["priced"].Price.Hash {
		t.Fatalf("more lines, same hash")
	}
}

// TestConcurrentDecideSharesNoState decides from many goroutines against one
// shared state; with -race this catches aliasing between old and new states.
func TestConcurrentDecideSharesNoState(t *testing.T) {
	s := states(t)["priced"]
	before, _ := json.Marshal(s)
	cmds := []grains.Command{
		mustDecode(t, "addLine", `{"offeringId":"dia-1g","quantity":1}`),
		mustDecode(t, "removeLine", `{"lineId":"1"}`),
		mustDecode(t, "submit", `{}`),
		mustDecode(t, "cancel", `{}`),
	}
	results := make([]string, 40)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			evs, err := quote.Decide(s, cmds[i%len(cmds)], env("sales"))
			if err != nil {
				results[i] = "error: " + err.Error()
				return
			}
			b, _ := json.Marshal(quote.Behavior.Fold(s, evs))
			results[i] = string(b)
		}(i)
	}
	wg.Wait()
	if after, _ := json.Marshal(s); string(after) != string(before) {
		t.Fatalf("shared state changed:\n%s\n%s", before, after)
	}
	for i, r := range results {
		if strings.HasPrefix(r, "error") || r != results[i%len(cmds)] {
			t.Fatalf("goroutine %d: %s", i, r)
		}
	}
}
