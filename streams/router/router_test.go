package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/deadletter"
	"github.com/grainline/grainline/streams/router"
	"github.com/grainline/grainline/streams/streamtest"
)

// fakeSender records every Send and answers from a script keyed by
// idempotency key: the script's errors are returned one per call, then nil.
type fakeSender struct {
	mu     sync.Mutex
	calls  []call.Command
	script map[string][]error
	always error // when set, every call fails with it
}

func (f *fakeSender) Send(_ context.Context, cmd call.Command) (call.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, cmd)
	if f.always != nil {
		return call.Result{}, f.always
	}
	if errs := f.script[cmd.IdempotencyKey]; len(errs) > 0 {
		f.script[cmd.IdempotencyKey] = errs[1:]
		return call.Result{}, errs[0]
	}
	return call.Result{Revision: 1}, nil
}

func (f *fakeSender) snapshot() []call.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call.Command(nil), f.calls...)
}

func command(t *testing.T, tenant, id, name, key string) []byte {
	t.Helper()
	return kindCommand(t, "order", tenant, id, name, key)
}

func kindCommand(t *testing.T, kind, tenant, id, name, key string) []byte {
	t.Helper()
	b, err := json.Marshal(kafka.CommandMessage{
		TenantID: tenant, Kind: kind, ID: id, Command: name,
		Payload: json.RawMessage(`{"n":"` + key + `"}`), IdempotencyKey: key,
		Actor: "intake", CorrelationID: "corr-" + key, CausationID: "cause-" + key,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	b        *streamtest.Broker
	commands string
	dlq      string
	group    goka.Group
}

func newEnv(t *testing.T, b *streamtest.Broker) env {
	commands := b.Topic(t, "oms.order.commands", 3, false)
	return env{b: b, commands: commands, dlq: b.Topic(t, "grainline.deadletter", 1, false), group: b.Group(t, "oms-order-router-"+commands)}
}

func (e env) router(t *testing.T, s router.Sender) *router.Processor {
	t.Helper()
	p, err := router.New(router.Config{
		Brokers: e.b.Brokers, Group: e.group, Commands: goka.Stream(e.commands), DeadLetter: goka.Stream(e.dlq),
		Retry: backoff.Policy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
	}, s, streamtest.Logger(), e.b.ProcessorOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouter(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		t.Run("OrderPerKey", func(t *testing.T) { testOrderPerKey(t, b) })
		t.Run("RetryTransientDeadLetterPermanent", func(t *testing.T) { testRetryAndDeadLetter(t, b) })
		t.Run("ShutdownMidRetryRedelivers", func(t *testing.T) { testShutdownMidRetry(t, b) })
		t.Run("InternalAndUnknownKindDeadLettered", func(t *testing.T) { testInternalAndUnknownKind(t, b) })
	})
}

func testOrderPerKey(t *testing.T, b *streamtest.Broker) {
	e := newEnv(t, b)
	s := &fakeSender{script: map[string][]error{}}
	streamtest.Start(t, e.router(t, s))
	prod := b.Producer(t)
	const n = 15
	keys := []string{"ord-a", "ord-b", "ord-c", "ord-d"}
	for i := range n {
		for _, k := range keys {
			prod.Send(t, e.commands, k, command(t, "acme", k, "addNote", fmt.Sprintf("%s-%02d", k, i)), nil)
		}
	}
	streamtest.Eventually(t, 30*time.Second, "all commands delivered", func() bool { return len(s.snapshot()) >= n*len(keys) })
	calls := s.snapshot()
	if len(calls) != n*len(keys) {
		t.Fatalf("calls = %d, want %d", len(calls), n*len(keys))
	}
	next := map[string]int{}
	for _, c := range calls {
		want := fmt.Sprintf("%s-%02d", c.ID, next[c.ID])
		if c.IdempotencyKey != want {
			t.Fatalf("order of %s broken: got %s, want %s", c.ID, c.IdempotencyKey, want)
		}
		next[c.ID]++
	}
	c := calls[0]
	if c.Tenant != "acme" || c.Kind != grains.KindOrder || c.Name != "addNote" || c.Actor != "intake" ||
		len(c.Roles) != 1 || c.Roles[0] != router.SystemRole || c.CorrelationID != "corr-"+c.IdempotencyKey ||
		c.CausationID != "cause-"+c.IdempotencyKey || string(c.Payload) != `{"n":"`+c.IdempotencyKey+`"}` {
		t.Errorf("command = %+v", c)
	}
}

func testRetryAndDeadLetter(t *testing.T, b *streamtest.Broker) {
	e := newEnv(t, b)
	s := &fakeSender{script: map[string][]error{
		"k1": {grains.Errorf(grains.CodeUnavailable, "store down"), errors.New("connection reset")},
		"k2": {grains.Errorf(grains.CodeInvalidTransition, "order is cancelled")},
	}}
	streamtest.Start(t, e.router(t, s))
	prod := b.Producer(t)
	prod.Send(t, e.commands, "ord-1", command(t, "acme", "ord-1", "confirm", "k1"), map[string]string{kafka.HeaderTenant: "acme"})
	prod.Send(t, e.commands, "ord-1", command(t, "acme", "ord-1", "ship", "k2"), map[string]string{kafka.HeaderTenant: "acme"})
	prod.Send(t, e.commands, "ord-1", []byte("garbage"), nil)
	prod.Send(t, e.commands, "ord-1", command(t, "acme", "ord-1", "note", "k3"), nil)

	streamtest.Eventually(t, 30*time.Second, "k3 delivered", func() bool {
		calls := s.snapshot()
		return len(calls) > 0 && calls[len(calls)-1].IdempotencyKey == "k3"
	})
	var got []string
	for _, c := range s.snapshot() {
		got = append(got, c.IdempotencyKey)
	}
	if fmt.Sprint(got) != "[k1 k1 k1 k2 k3]" {
		t.Errorf("sends = %v, want [k1 k1 k1 k2 k3]", got)
	}
	dl := b.WaitRecords(t, e.dlq, "two dead letters", func(r []streamtest.Record) bool { return len(r) >= 2 })
	if len(dl) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(dl))
	}
	perm, err := deadletter.Decode(dl[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if perm.Category != deadletter.CategoryPermanent || perm.Attempts != 1 || perm.Key != "ord-1" ||
		perm.OriginalTopic != e.commands || perm.TenantID != "acme" || perm.Consumer != string(e.group) {
		t.Errorf("permanent record = %+v", perm)
	}
	if m, err := kafka.DecodeCommand(perm.Value); err != nil || m.IdempotencyKey != "k2" {
		t.Errorf("permanent record value = %s (%v)", perm.Value, err)
	}
	dec, _ := deadletter.Decode(dl[1].Value)
	if dec.Category != deadletter.CategoryDecode || string(dec.Value) != "garbage" || dec.Offset != perm.Offset+1 {
		t.Errorf("decode record = %+v", dec)
	}
}

func testShutdownMidRetry(t *testing.T, b *streamtest.Broker) {
	e := newEnv(t, b)
	down := &fakeSender{always: grains.Errorf(grains.CodeUnavailable, "cluster down")}
	stop := streamtest.Start(t, e.router(t, down))
	prod := b.Producer(t)
	prod.Send(t, e.commands, "ord-7", command(t, "acme", "ord-7", "confirm", "k7"), nil)
	streamtest.Eventually(t, 30*time.Second, "several attempts", func() bool { return len(down.snapshot()) >= 3 })
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if dl := b.ReadAll(t, e.dlq); len(dl) != 0 {
		t.Fatalf("a transient failure was dead-lettered: %d records", len(dl))
	}
	// The offset was not committed: a new router of the same group gets the
	// command again and delivers it.
	up := &fakeSender{script: map[string][]error{}}
	streamtest.Start(t, e.router(t, up))
	streamtest.Eventually(t, 30*time.Second, "redelivery after restart", func() bool { return len(up.snapshot()) >= 1 })
	if c := up.snapshot()[0]; c.IdempotencyKey != "k7" {
		t.Errorf("redelivered %q, want k7", c.IdempotencyKey)
	}
}

// A grain's internal error and a command for a kind nobody hosts are
// dead-lettered instead of wedging the partition; conflict is retried.
func testInternalAndUnknownKind(t *testing.T, b *streamtest.Broker) {
	e := newEnv(t, b)
	s := &fakeSender{script: map[string][]error{
		"k1": {grains.Errorf(grains.CodeInternal, "encode state: boom")},
		"k3": {grains.Errorf(grains.CodeConflict, "changed concurrently"), grains.Errorf(grains.CodeConflict, "again")},
	}}
	streamtest.Start(t, e.router(t, s))
	prod := b.Producer(t)
	prod.Send(t, e.commands, "ord-1", command(t, "acme", "ord-1", "confirm", "k1"), nil)
	prod.Send(t, e.commands, "ord-1", kindCommand(t, "invoice", "acme", "ord-1", "pay", "k2"), nil)
	prod.Send(t, e.commands, "ord-1", command(t, "acme", "ord-1", "note", "k3"), nil)
	prod.Send(t, e.commands, "ord-1", kindCommand(t, "quote", "acme", "ord-1", "touch", "k4"), nil)

	streamtest.Eventually(t, 30*time.Second, "k4 delivered", func() bool {
		calls := s.snapshot()
		return len(calls) > 0 && calls[len(calls)-1].IdempotencyKey == "k4"
	})
	var got []string
	for _, c := range s.snapshot() {
		got = append(got, c.IdempotencyKey)
	}
	if fmt.Sprint(got) != "[k1 k3 k3 k3 k4]" {
		t.Errorf("sends = %v, want [k1 k3 k3 k3 k4] (the unknown kind never sent)", got)
	}
	dl := b.WaitRecords(t, e.dlq, "two dead letters", func(r []streamtest.Record) bool { return len(r) >= 2 })
	if len(dl) != 2 {
		t.Fatalf("dead letters = %d, want 2", len(dl))
	}
	internal, err := deadletter.Decode(dl[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if internal.Category != deadletter.CategoryPermanent || internal.Attempts != 1 {
		t.Errorf("internal-error record = %+v", internal)
	}
	if m, err := kafka.DecodeCommand(internal.Value); err != nil || m.IdempotencyKey != "k1" {
		t.Errorf("internal-error record value = %s (%v)", internal.Value, err)
	}
	unknown, err := deadletter.Decode(dl[1].Value)
	if err != nil {
		t.Fatal(err)
	}
	if unknown.Category != deadletter.CategoryPermanent || unknown.Attempts != 0 || unknown.Offset != internal.Offset+1 {
		t.Errorf("unknown-kind record = %+v", unknown)
	}
	if m, err := kafka.DecodeCommand(unknown.Value); err != nil || m.IdempotencyKey != "k2" {
		t.Errorf("unknown-kind record value = %s (%v)", unknown.Value, err)
	}
}

func TestPermanentClassification(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{grains.Errorf(grains.CodeInvalidTransition, "x"), true},
		{grains.Errorf(grains.CodeAlreadyExists, "x"), true},
		{grains.Errorf(grains.CodeValidation, "x"), true},
		{grains.Errorf(grains.CodeNotFound, "x"), true},
		{grains.Errorf(grains.CodeForbidden, "x"), true},
		{grains.Errorf(grains.CodeBadRequest, "x"), true},
		{grains.Errorf(grains.CodeIdempotencyKeyReused, "x"), true},
		{fmt.Errorf("send: %w", grains.Errorf(grains.CodeNotFound, "x")), true},
		{grains.Errorf(grains.CodeUnavailable, "x"), false},
		{grains.Errorf(grains.CodeConflict, "x"), false},
		{grains.Errorf(grains.CodeInternal, "x"), true},
		{grains.Errorf(grains.CodeRevisionMismatch, "x"), true},
		{fmt.Errorf("send: %w", grains.Errorf(grains.CodeConflict, "x")), false},
		{errors.New("connection refused"), false},
		{context.DeadlineExceeded, false},
	}
	for _, c := range cases {
		if got := router.Permanent(c.err); got != c.want {
			t.Errorf("Permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	s := &fakeSender{}
	if _, err := router.New(router.Config{}, s, nil); !errors.Is(err, router.ErrConfig) {
		t.Errorf("no brokers: %v", err)
	}
	if _, err := router.New(router.Config{Brokers: []string{"x:1"}, Commands: "a", DeadLetter: "a"}, s, nil); !errors.Is(err, router.ErrConfig) {
		t.Errorf("same topics: %v", err)
	}
	if _, err := router.New(router.Config{Brokers: []string{"x:1"}}, nil, nil); !errors.Is(err, router.ErrConfig) {
		t.Errorf("nil sender: %v", err)
	}
	if _, err := router.New(router.Config{Brokers: []string{"x:1"}, Retry: backoff.Policy{Jitter: 3}}, s, nil); !errors.Is(err, router.ErrConfig) {
		t.Errorf("bad retry: %v", err)
	}
	if _, err := router.New(router.Config{Brokers: []string{"x:1"}, Kinds: []grains.Kind{"order", ""}}, s, nil); !errors.Is(err, router.ErrConfig) {
		t.Errorf("empty kind: %v", err)
	}
	if got := (router.Config{}).WithDefaults().Kinds; fmt.Sprint(got) != "[quote order]" {
		t.Errorf("default Kinds = %v, want [quote order]", got)
	}
}
