package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/grains"
)

// counter is a test-only grain kind: "create" makes it, "add" adds N.
type counterState struct {
	Created bool `json:"created"`
	Value   int  `json:"value"`
}

type counterCmd struct {
	name string
	N    int `json:"n"`
}

func (c counterCmd) CommandName() string { return c.name }

type counterEvent struct {
	Type string `json:"type"`
	N    int    `json:"n"`
}

func (e counterEvent) EventName() string { return e.Type }

var counterBehavior = grains.Behavior[counterState]{
	Kind: "counter",
	Decide: func(s counterState, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
		c := cmd.(counterCmd)
		switch c.name {
		case "create":
			if s.Created {
				return nil, grains.Errorf(grains.CodeAlreadyExists, "exists")
			}
			return []grains.Event{counterEvent{Type: "Created"}}, nil
		case "add":
			if !s.Created {
				return nil, grains.Errorf(grains.CodeNotFound, "no counter")
			}
			if c.N == 0 {
				return nil, nil
			}
			return []grains.Event{counterEvent{Type: "Added", N: c.N}}, nil
		case "guard":
			if !env.HasRole("boss") {
				return nil, grains.Errorf(grains.CodeForbidden, "guard requires role boss")
			}
			return []grains.Event{counterEvent{Type: "Added", N: 100}}, nil
		case "unsafe":
			return nil, grains.Errorf(grains.CodeBillingOutcomeUnknown, "the outcome is unknown")
		case "sub":
			if !s.Created {
				return nil, grains.Errorf(grains.CodeNotFound, "no counter")
			}
			if s.Value < c.N {
				return nil, grains.Errorf(grains.CodeInvalidTransition, "value %d is below %d", s.Value, c.N)
			}
			return []grains.Event{counterEvent{Type: "Added", N: -c.N}}, nil
		}
		return nil, grains.Errorf(grains.CodeBadRequest, "unknown command %q", c.name)
	},
	Apply: func(s counterState, ev grains.Event) counterState {
		e := ev.(counterEvent)
		if e.Type == "Created" {
			s.Created = true
		}
		s.Value += e.N
		return s
	},
	DecodeCommand: func(name string, payload []byte) (grains.Command, error) {
		c := counterCmd{name: name}
		if len(payload) > 0 {
			if err := json.Unmarshal(payload, &c); err != nil {
				return nil, grains.Errorf(grains.CodeBadRequest, "bad payload: %v", err)
			}
		}
		return c, nil
	},
	Exists: func(s counterState) bool { return s.Created },
}

func counterKind() Kind {
	return NewKind(counterBehavior, func(string) []string { return []string{"test.counter.events.v1"} })
}

func openStore(t *testing.T) truth.Store {
	t.Helper()
	s, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startTestNode(t *testing.T, store Store, cfg Config) *Node {
	t.Helper()
	n, err := StartNode(cfg, Deps{Store: store, Kinds: []Kind{counterKind()}, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
	return n
}

func send(t *testing.T, s call.Sender, tenant, id, name string, n int, opts ...func(*call.Command)) (call.Result, error) {
	t.Helper()
	payload, _ := json.Marshal(map[string]int{"n": n})
	cmd := call.Command{Tenant: grains.TenantID(tenant), Kind: "counter", ID: id, Name: name, Payload: payload, Actor: "test"}
	for _, o := range opts {
		o(&cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return s.Send(ctx, cmd)
}

func value(t *testing.T, r call.Result) int {
	t.Helper()
	var s counterState
	if err := json.Unmarshal(r.State, &s); err != nil {
		t.Fatalf("decode state %q: %v", r.State, err)
	}
	return s.Value
}

func mustSend(t *testing.T, s call.Sender, tenant, id, name string, n int, opts ...func(*call.Command)) call.Result {
	t.Helper()
	r, err := send(t, s, tenant, id, name, n, opts...)
	if err != nil {
		t.Fatalf("%s %s/%s: %v", name, tenant, id, err)
	}
	return r
}

func TestNodeCommandsAreDurableAndSurviveRestart(t *testing.T) {
	store := openStore(t)
	n := startTestNode(t, store, Config{})
	mustSend(t, n, "acme", "c1", "create", 0)
	r := mustSend(t, n, "acme", "c1", "add", 5)
	if r.Revision != 2 || value(t, r) != 5 {
		t.Fatalf("after add: revision %d value %d, want 2 and 5", r.Revision, value(t, r))
	}
	snap, err := store.Load(context.Background(), truth.Key{Tenant: "acme", Kind: "counter", ID: "c1"})
	if err != nil || snap.Revision != 2 {
		t.Fatalf("stored snapshot: %+v, %v", snap, err)
	}
	pending, err := store.PendingOutbox(context.Background(), 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("outbox: %d records, %v; want 2", len(pending), err)
	}
	if pending[1].Event.Type != "Added" || pending[1].Event.Revision != 2 || pending[1].Event.Topic != "test.counter.events.v1" {
		t.Errorf("outbox event = %+v", pending[1].Event)
	}

	// A second node on the same store (a restart) sees the same state.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n2 := startTestNode(t, store, Config{})
	got, err := n2.Get(ctx, "acme", "counter", "c1")
	if err != nil || got.Revision != 2 || value(t, got) != 5 {
		t.Fatalf("after restart: %+v %v", got, err)
	}
}

func TestNodeErrorsCarryStableCodes(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	cases := []struct {
		name string
		do   func() error
		want grains.Code
	}{
		{"command on a missing grain", func() error { _, err := send(t, n, "acme", "nope", "add", 1); return err }, grains.CodeNotFound},
		{"get a missing grain", func() error { _, err := n.Get(context.Background(), "acme", "counter", "nope"); return err }, grains.CodeNotFound},
		{"bad payload", func() error {
			_, err := send(t, n, "acme", "c", "add", 0, func(c *call.Command) { c.Payload = []byte("{") })
			return err
		}, grains.CodeBadRequest},
		{"tenant with a slash", func() error { _, err := send(t, n, "a/b", "c", "create", 0); return err }, grains.CodeNotFound},
	}
	for _, tc := range cases {
		if got := grains.CodeOf(tc.do()); got != tc.want {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNodeTenantsAreIsolated(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	mustSend(t, n, "acme", "shared-id", "create", 0)
	mustSend(t, n, "acme", "shared-id", "add", 7)
	if _, err := n.Get(context.Background(), "globex", "counter", "shared-id"); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("other tenant reads: %v, want not_found", err)
	}
	mustSend(t, n, "globex", "shared-id", "create", 0)
	r, _ := n.Get(context.Background(), "globex", "counter", "shared-id")
	if value(t, r) != 0 {
		t.Fatalf("globex sees acme's value %d", value(t, r))
	}
}

func TestNodeIdempotencyKeyReplaysFirstResult(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	mustSend(t, n, "acme", "c1", "create", 0)
	key := func(k string) func(*call.Command) { return func(c *call.Command) { c.IdempotencyKey = k } }

	first := mustSend(t, n, "acme", "c1", "add", 3, key("k1"))
	mustSend(t, n, "acme", "c1", "add", 10) // moves on without a key
	again := mustSend(t, n, "acme", "c1", "add", 3, key("k1"))
	if !again.Replayed || again.Revision != first.Revision || value(t, again) != 3 {
		t.Fatalf("replay = %+v (value %d); want first result (rev %d, value 3) replayed", again, value(t, again), first.Revision)
	}
	cur, _ := n.Get(context.Background(), "acme", "counter", "c1")
	if value(t, cur) != 13 {
		t.Fatalf("value = %d, want 13: the replay must change nothing", value(t, cur))
	}
	// Same key, different request.
	if _, err := send(t, n, "acme", "c1", "add", 4, key("k1")); grains.CodeOf(err) != grains.CodeIdempotencyKeyReused {
		t.Fatalf("reused key: %v, want idempotency_key_reused", err)
	}
	// The key is the tenant's: another tenant may use it.
	mustSend(t, n, "globex", "c1", "create", 0)
	if r := mustSend(t, n, "globex", "c1", "add", 3, key("k1")); r.Replayed {
		t.Fatal("a key of tenant acme replayed for tenant globex")
	}
}

func TestNodeIfMatch(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	r := mustSend(t, n, "acme", "c1", "create", 0)
	ifMatch := func(rev int64) func(*call.Command) { return func(c *call.Command) { c.IfMatch = rev } }
	if _, err := send(t, n, "acme", "c1", "add", 1, ifMatch(r.Revision+1)); grains.CodeOf(err) != grains.CodeRevisionMismatch {
		t.Fatalf("stale If-Match: %v, want revision_mismatch", err)
	}
	if r2 := mustSend(t, n, "acme", "c1", "add", 1, ifMatch(r.Revision)); r2.Revision != r.Revision+1 {
		t.Fatalf("revision %d after conditional add", r2.Revision)
	}
}

func TestNodeCommandsToOneGrainAreSerialised(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	mustSend(t, n, "acme", "c1", "create", 0)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); mustSend(t, n, "acme", "c1", "add", 1) }()
	}
	wg.Wait()
	r, _ := n.Get(context.Background(), "acme", "counter", "c1")
	if r.Revision != 51 || value(t, r) != 50 {
		t.Fatalf("revision %d value %d, want 51 and 50", r.Revision, value(t, r))
	}
	if batches, commits := n.CommitStats(); commits != 51 || batches > commits {
		t.Fatalf("committer: %d batches, %d commits", batches, commits)
	}
}

func TestNodePassivatesIdleGrainsAndReloads(t *testing.T) {
	store := openStore(t)
	n := startTestNode(t, store, Config{IdleTimeout: time.Second})
	mustSend(t, n, "acme", "c1", "create", 0)
	mustSend(t, n, "acme", "c1", "add", 2)
	kind := n.cluster.GetClusterKind("counter")
	waitFor(t, "passivation", func() bool { return kind.Count() == 0 })
	r := mustSend(t, n, "acme", "c1", "add", 1)
	if r.Revision != 3 || value(t, r) != 3 {
		t.Fatalf("after reactivation: revision %d value %d, want 3 and 3", r.Revision, value(t, r))
	}
}

// A second activation of the same grain, with a stale snapshot, must not
// overwrite the first one's commits: the store's revision check rejects it,
// and it reloads and decides again.
func TestStaleActivationIsRejectedByRevisionCheck(t *testing.T) {
	store := openStore(t)
	// Two separate clusters on one store: each activates its own copy of c1,
	// as two owners would during a membership change.
	a := startTestNode(t, store, Config{})
	b := startTestNode(t, store, Config{})
	mustSend(t, a, "acme", "c1", "create", 0)
	mustSend(t, b, "acme", "c1", "add", 1) // b activates, loads revision 1
	mustSend(t, a, "acme", "c1", "add", 10)
	mustSend(t, a, "acme", "c1", "add", 100) // a is at revision 4; b still thinks 2

	r := mustSend(t, b, "acme", "c1", "add", 1000)
	if r.Revision != 5 || value(t, r) != 1111 {
		t.Fatalf("stale activation: revision %d value %d, want 5 and 1111 (no lost update)", r.Revision, value(t, r))
	}
	snap, _ := store.Load(context.Background(), truth.Key{Tenant: "acme", Kind: "counter", ID: "c1"})
	if snap.Revision != 5 {
		t.Fatalf("stored revision %d, want 5", snap.Revision)
	}

	// And at the store itself: a commit built on the stale revision fails.
	stale := truth.Commit{ExpectedRevision: 2, Snapshot: truth.Snapshot{Key: snap.Key, Revision: 3, State: []byte(`{}`)}}
	res, err := store.Commit(context.Background(), []truth.Commit{stale})
	if err != nil || !errors.Is(res[0], truth.ErrRevisionConflict) {
		t.Fatalf("stale commit: %v %v, want ErrRevisionConflict", res, err)
	}
}

// Grains spread over members; calls from any member reach grains owned by
// the others, which proves the wire messages cross the remote boundary.
func TestGrainCallsAcrossMembers(t *testing.T) {
	store := openStore(t)
	m := NewMembership()
	nodes := []*Node{
		startTestNode(t, store, Config{Provider: m.Provider()}),
		startTestNode(t, store, Config{Provider: m.Provider()}),
		startTestNode(t, store, Config{Provider: m.Provider()}),
	}
	waitFor(t, "three members", func() bool {
		for _, n := range nodes {
			if len(n.cluster.MemberList.Members().Members()) != 3 {
				return false
			}
		}
		return true
	})
	const grainsN = 30
	for i := 0; i < grainsN; i++ {
		id := fmt.Sprintf("g%d", i)
		mustSend(t, nodes[i%3], "acme", id, "create", 0)
		for j, n := range nodes {
			r := mustSend(t, n, "acme", id, "add", j+1)
			if r.Revision != int64(j+2) {
				t.Fatalf("%s via node %d: revision %d", id, j, r.Revision)
			}
		}
	}
	remote := 0
	for i := 0; i < grainsN; i++ {
		id := fmt.Sprintf("g%d", i)
		pid := nodes[0].cluster.Get(Identity("acme", id), "counter")
		if pid == nil {
			t.Fatalf("%s: no activation", id)
		}
		if pid.Address != nodes[0].Address() {
			remote++
		}
		r, err := nodes[0].Get(context.Background(), "acme", "counter", id)
		if err != nil || value(t, r) != 6 {
			t.Fatalf("%s: value %d err %v, want 6", id, value(t, r), err)
		}
	}
	if remote == 0 {
		t.Fatal("every grain was owned by node 0: no call crossed members")
	}
	// Errors cross the wire with their codes.
	for _, n := range nodes {
		if _, err := send(t, n, "acme", "g1", "create", 0); grains.CodeOf(err) != grains.CodeAlreadyExists {
			t.Fatalf("remote error: %v, want already_exists", err)
		}
	}
}

// A client hosts no grains but reaches every member's.
func TestClientCallsGrainsOfMembers(t *testing.T) {
	store := openStore(t)
	m := NewMembership()
	a := startTestNode(t, store, Config{Provider: m.Provider()})
	b := startTestNode(t, store, Config{Provider: m.Provider()})
	c, err := StartClient(Config{Provider: m.Provider()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "two members seen by the client", func() bool {
		return c.cluster.MemberList.Length() == 2
	})
	owners := map[string]bool{}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("k%d", i)
		mustSend(t, c, "acme", id, "create", 0)
		r := mustSend(t, c, "acme", id, "add", i)
		if value(t, r) != i {
			t.Fatalf("%s: value %d, want %d", id, value(t, r), i)
		}
		owners[c.cluster.Get(Identity("acme", id), "counter").Address] = true
	}
	if !owners[a.Address()] || !owners[b.Address()] {
		t.Fatalf("grains landed on %v; want both members %s and %s", owners, a.Address(), b.Address())
	}
	if _, n := a.CommitStats(); n == 0 {
		t.Fatal("member a committed nothing")
	}
	if _, n := b.CommitStats(); n == 0 {
		t.Fatal("member b committed nothing")
	}
}

// A repeat is answered with the first result whichever way it would have
// gone this time: rejected by If-Match, rejected by the state machine, or
// caught by the commit.
func TestNodeIdempotentRepeatsOnEveryPath(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	key := func(k string) func(*call.Command) { return func(c *call.Command) { c.IdempotencyKey = k } }
	ifMatch := func(rev int64) func(*call.Command) { return func(c *call.Command) { c.IfMatch = rev } }

	// Decide would now fail (already exists): the first result comes back.
	created := mustSend(t, n, "acme", "c1", "create", 0, key("create-1"))
	again := mustSend(t, n, "acme", "c1", "create", 0, key("create-1"))
	if !again.Replayed || again.Revision != created.Revision {
		t.Fatalf("repeated create = %+v, want the first result replayed", again)
	}

	// If-Match would now fail: a conditional repeat still gets the first result.
	first := mustSend(t, n, "acme", "c1", "add", 2, key("cond-1"), ifMatch(created.Revision))
	mustSend(t, n, "acme", "c1", "add", 1)
	repeat := mustSend(t, n, "acme", "c1", "add", 2, key("cond-1"), ifMatch(created.Revision))
	if !repeat.Replayed || repeat.Revision != first.Revision {
		t.Fatalf("conditional repeat = %+v, want first result (revision %d)", repeat, first.Revision)
	}

	// Decide would succeed again: the commit finds the key and nothing changes.
	before, _ := n.Get(context.Background(), "acme", "counter", "c1")
	r := mustSend(t, n, "acme", "c1", "add", 2, key("cond-1"))
	if !r.Replayed {
		t.Fatalf("unconditional repeat applied again: %+v", r)
	}
	after, _ := n.Get(context.Background(), "acme", "counter", "c1")
	if after.Revision != before.Revision || value(t, after) != value(t, before) {
		t.Fatalf("repeat changed state: %d/%d -> %d/%d", before.Revision, value(t, before), after.Revision, value(t, after))
	}

	// The key on another aggregate is a reuse, caught at the commit.
	mustSend(t, n, "acme", "c2", "create", 0)
	if _, err := send(t, n, "acme", "c2", "add", 2, key("cond-1")); grains.CodeOf(err) != grains.CodeIdempotencyKeyReused {
		t.Fatalf("key reused on another grain: %v, want idempotency_key_reused", err)
	}
	c2, _ := n.Get(context.Background(), "acme", "counter", "c2")
	if value(t, c2) != 0 {
		t.Fatalf("the refused reuse changed c2 to %d", value(t, c2))
	}
}

// An activation for an id that does not exist is not kept: reads of
// unknown ids cannot pile up activations, and a command that races the
// stop is resent, not lost.
func TestNodeDropsActivationsOfMissingGrains(t *testing.T) {
	n := startTestNode(t, openStore(t), Config{})
	kind := n.cluster.GetClusterKind("counter")
	for i := 0; i < 20; i++ {
		if _, err := n.Get(context.Background(), "acme", "counter", fmt.Sprintf("ghost-%d", i)); grains.CodeOf(err) != grains.CodeNotFound {
			t.Fatalf("get ghost: %v", err)
		}
	}
	waitFor(t, "ghost activations to stop", func() bool { return kind.Count() == 0 })

	// Reads and a create racing on one id: every call is answered at once
	// (well inside the timeout), and the create lands exactly once.
	var wg sync.WaitGroup
	errs := make(chan error, 41)
	start := time.Now()
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.Get(context.Background(), "acme", "counter", "racy"); err != nil && grains.CodeOf(err) != grains.CodeNotFound {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); _, err := send(t, n, "acme", "racy", "create", 0); errs <- err }()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call failed: %v", err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("calls took %v: a message was lost behind a stop and waited for its timeout", d)
	}
	if r, err := n.Get(context.Background(), "acme", "counter", "racy"); err != nil || r.Revision != 1 {
		t.Fatalf("racy: %+v %v, want created once", r, err)
	}
}

// A rejection decided on a stale activation is checked against the store:
// if another activation moved the grain on, the command is decided again.
func TestStaleActivationRechecksBeforeRejecting(t *testing.T) {
	store := openStore(t)
	a := startTestNode(t, store, Config{})
	b := startTestNode(t, store, Config{})
	mustSend(t, a, "acme", "c1", "create", 0)
	mustSend(t, a, "acme", "c1", "add", 1)
	mustSend(t, b, "acme", "c1", "add", 0) // b activates at value 1 (a no-op)
	mustSend(t, a, "acme", "c1", "add", 10)

	r, err := send(t, b, "acme", "c1", "sub", 5) // stale b sees 1 < 5
	if err != nil {
		t.Fatalf("sub on a stale activation: %v, want it decided on the stored state (11)", err)
	}
	if value(t, r) != 6 || r.Revision != 4 {
		t.Fatalf("after sub: value %d revision %d, want 6 and 4", value(t, r), r.Revision)
	}
	// A rejection that holds on the stored state stays a rejection.
	if _, err := send(t, b, "acme", "c1", "sub", 100); grains.CodeOf(err) != grains.CodeInvalidTransition {
		t.Fatalf("sub 100: %v, want invalid_transition", err)
	}
}

// TestNodeTellsCommittedEvents: Deps.Committed sees the events of each
// durable commit once; a command answered from its idempotency record, a
// no-op and a refused command are not commits.
func TestNodeTellsCommittedEvents(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	n, err := StartNode(Config{}, Deps{Store: openStore(t), Kinds: []Kind{counterKind()}, Log: discard(),
		Committed: func(key truth.Key, events []grains.Event) {
			mu.Lock()
			defer mu.Unlock()
			for _, ev := range events {
				seen = append(seen, key.ID+":"+ev.EventName())
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	withKey := func(c *call.Command) { c.IdempotencyKey = "k-1" }
	mustSend(t, n, "acme", "c9", "create", 0)
	mustSend(t, n, "acme", "c9", "add", 2, withKey)
	mustSend(t, n, "acme", "c9", "add", 2, withKey) // replayed from the record
	mustSend(t, n, "acme", "c9", "add", 0)          // no events
	if _, err := send(t, n, "acme", "c9", "create", 0); grains.CodeOf(err) != grains.CodeAlreadyExists {
		t.Fatalf("second create: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, " ") != "c9:Created c9:Added" {
		t.Fatalf("committed events %v, want the create and one add", seen)
	}
}
