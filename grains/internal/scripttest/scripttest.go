// Package scripttest runs data-driven state-machine scripts against a
// grains.Behavior. A script is a text file of directives, one per line:
//
//	# a comment; blank lines are ignored
//	env tenant=demo id=q-1 actor=alice roles=sales now=2026-01-02T10:00:00Z
//	cmd create {"customerId":"c-1","currency":"EUR"}
//	events QuoteCreated
//	state status=inProgress lines.0.quantity=2 price=null
//	event 0 customerId=c-1
//	cmd approve {}
//	error forbidden
//
// Directives:
//
//	env k=v...        change the environment: tenant, id, actor, roles
//	                  (comma-separated, "-" for none), now (RFC 3339),
//	                  correlation, catalog (demo|none), policy (demo|none|
//	                  a JSON policy file relative to the script, see
//	                  approval.Parse). Unset keys keep their value; the
//	                  catalog starts as catalog.Demo(), the policy as
//	                  approval.Demo().
//	cmd NAME [JSON]   decode and decide NAME with the rest of the line as
//	                  payload; on success fold the events into the state.
//	                  Every cmd's outcome must be checked by events or error
//	                  before the next cmd or the end of the script.
//	events [NAME...]  the last cmd succeeded with exactly these events
//	                  (none: it was a no-op).
//	error CODE [PTR...] the last cmd failed with this code and, when
//	                  pointers are given, exactly these violation pointers.
//	message TEXT      the last error's message contains TEXT.
//	state P=V...      fields of the state's JSON: P is a dotted path
//	                  (lines.0.quantity), V the expected value: a JSON string
//	                  matches its text, anything else its compact JSON; "*"
//	                  means present and neither null nor empty. Values may be
//	                  Go-quoted: reason="too expensive"; "<missing>" means
//	                  the path does not exist.
//	event N P=V...    fields of the N-th (0-based) event of the last cmd.
//	timers [ID=V...]  the timer changes of the last cmd's events
//	                  (grains.TimerEffects, merged as the runtime does: a
//	                  later event's change to an ID wins) are exactly
//	                  these: V is the RFC 3339 time a timer is set for, or
//	                  "cancel". No pairs: the events change no timer.
//	timer ID P=V...   fields of the JSON payload of the timer ID that the
//	                  last cmd set.
//	exists true|false what Behavior.Exists says about the state.
//	reset             back to the zero state.
//
// Besides the explicit checks, every successful cmd is checked for purity and
// fidelity: Decide gives the same events twice and does not change its input
// state, each event survives JSON and DecodeEvent unchanged, folding the
// decoded events gives the same state as folding the originals, and the state
// survives a JSON round trip.
package scripttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
)

// EventDecoder decodes an event from its wire name and payload.
type EventDecoder func(name string, payload []byte) (grains.Event, error)

// RunDir runs every file matching glob as a subtest named after the file.
func RunDir[S any](t *testing.T, glob string, b grains.Behavior[S], decode EventDecoder) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scripts match %s", glob)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { Run(t, f, b, decode) })
	}
}

// Run runs one script file.
func Run[S any](t *testing.T, path string, b grains.Behavior[S], decode EventDecoder) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner[S]{t: t, file: filepath.Base(path), dir: filepath.Dir(path), b: b, decode: decode,
		env: grains.Env{Catalog: catalog.Demo(), Policy: approval.Demo()}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r.line = n
		r.directive(line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	r.requireChecked()
}

type runner[S any] struct {
	t      *testing.T
	file   string
	dir    string
	line   int
	b      grains.Behavior[S]
	decode EventDecoder
	env    grains.Env
	state  S

	// outcome of the last cmd
	cmdLine int
	checked bool
	events  []grains.Event
	err     error
}

func (r *runner[S]) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s:%d: %s", r.file, r.line, fmt.Sprintf(format, args...))
}

func (r *runner[S]) errorf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("%s:%d: %s", r.file, r.line, fmt.Sprintf(format, args...))
}

func (r *runner[S]) requireChecked() {
	r.t.Helper()
	if r.cmdLine != 0 && !r.checked {
		r.t.Fatalf("%s:%d: outcome of cmd not checked (add events or error)", r.file, r.cmdLine)
	}
}

func (r *runner[S]) directive(line string) {
	r.t.Helper()
	verb, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch verb {
	case "env":
		r.setEnv(rest)
	case "cmd":
		r.requireChecked()
		name, payload, _ := strings.Cut(rest, " ")
		r.runCmd(name, []byte(strings.TrimSpace(payload)))
	case "events":
		r.checked = true
		r.expectEvents(strings.Fields(rest))
	case "error":
		r.checked = true
		r.expectError(strings.Fields(rest))
	case "message":
		if r.err == nil {
			r.errorf("message: last cmd did not fail")
		} else if !strings.Contains(r.err.Error(), rest) {
			r.errorf("error message %q does not contain %q", r.err.Error(), rest)
		}
	case "state":
		r.expectFields("state", r.stateJSON(), rest)
	case "event":
		idx, fields, _ := strings.Cut(rest, " ")
		i, err := strconv.Atoi(idx)
		if err != nil {
			r.fatalf("event: bad index %q", idx)
		}
		if i < 0 || i >= len(r.events) {
			r.errorf("event %d: last cmd produced %d events", i, len(r.events))
			return
		}
		b, err := json.Marshal(r.events[i])
		if err != nil {
			r.fatalf("event %d: %v", i, err)
		}
		r.expectFields(fmt.Sprintf("event %d (%s)", i, r.events[i].EventName()), b, fields)
	case "timers":
		r.expectTimers(rest)
	case "timer":
		id, fields, _ := strings.Cut(rest, " ")
		set, _ := r.timerChanges()
		t, ok := set[id]
		if !ok {
			r.errorf("timer %s: the last cmd did not set it", id)
			return
		}
		payload := t.Payload
		if len(payload) == 0 {
			payload = []byte("{}")
		}
		r.expectFields("timer "+id+" ("+t.Command+")", payload, fields)
	case "exists":
		want, err := strconv.ParseBool(rest)
		if err != nil {
			r.fatalf("exists: %v", err)
		}
		if got := r.b.Exists(r.state); got != want {
			r.errorf("exists = %v, want %v", got, want)
		}
	case "reset":
		var zero S
		r.state = zero
	case "dump":
		r.t.Logf("%s:%d: state %s", r.file, r.line, r.stateJSON())
	default:
		r.fatalf("unknown directive %q", verb)
	}
}

func (r *runner[S]) setEnv(rest string) {
	r.t.Helper()
	kvs, err := parseAssignments(rest)
	if err != nil {
		r.fatalf("env: %v", err)
	}
	for _, kv := range kvs {
		switch kv.key {
		case "tenant":
			r.env.Tenant = grains.TenantID(kv.value)
		case "id":
			r.env.ID = kv.value
		case "actor":
			r.env.Actor = kv.value
		case "roles":
			r.env.Roles = nil
			if kv.value != "-" && kv.value != "" {
				r.env.Roles = strings.Split(kv.value, ",")
			}
		case "now":
			ts, err := time.Parse(time.RFC3339Nano, kv.value)
			if err != nil {
				r.fatalf("env now: %v", err)
			}
			r.env.Now = ts
		case "correlation":
			r.env.CorrelationID = kv.value
		case "catalog":
			switch kv.value {
			case "demo":
				r.env.Catalog = catalog.Demo()
			case "none":
				r.env.Catalog = nil
			default:
				r.fatalf("env catalog: want demo or none, got %q", kv.value)
			}
		case "policy":
			switch kv.value {
			case "demo":
				r.env.Policy = approval.Demo()
			case "none":
				r.env.Policy = nil
			default:
				data, err := os.ReadFile(filepath.Join(r.dir, kv.value))
				if err != nil {
					r.fatalf("env policy: %v", err)
				}
				if r.env.Policy, err = approval.Parse(data); err != nil {
					r.fatalf("env policy %s: %v", kv.value, err)
				}
			}
		default:
			r.fatalf("env: unknown key %q", kv.key)
		}
	}
}

func (r *runner[S]) runCmd(name string, payload []byte) {
	r.t.Helper()
	r.cmdLine, r.checked, r.events, r.err = r.line, false, nil, nil
	cmd, err := r.b.DecodeCommand(name, payload)
	if err != nil {
		r.err = err
		return
	}
	before := r.stateJSON()
	evs, err := r.b.Decide(r.state, cmd, r.env)
	if after := r.stateJSON(); !bytes.Equal(before, after) {
		r.fatalf("Decide changed its input state:\nbefore %s\nafter  %s", before, after)
	}
	if err != nil {
		var de *grains.Error
		if !errors.As(err, &de) {
			r.fatalf("Decide returned a non-domain error %T: %v", err, err)
		}
		if len(evs) != 0 {
			r.fatalf("Decide returned events and an error")
		}
		r.err = err
		return
	}
	again, err2 := r.b.Decide(r.state, cmd, r.env)
	if err2 != nil || !bytes.Equal(mustJSON(r.t, evs), mustJSON(r.t, again)) {
		r.fatalf("Decide is not deterministic: %s vs %s (%v)", mustJSON(r.t, evs), mustJSON(r.t, again), err2)
	}
	r.events = evs

	// Fold the events as decoded from the wire, and check that this is
	// exactly what folding the originals gives.
	direct := r.b.Fold(r.state, evs)
	decoded := r.state
	for i, ev := range evs {
		raw := mustJSON(r.t, ev)
		back, err := r.decode(ev.EventName(), raw)
		if err != nil {
			r.fatalf("event %d (%s) does not decode: %v", i, ev.EventName(), err)
		}
		if back.EventName() != ev.EventName() || !bytes.Equal(mustJSON(r.t, back), raw) {
			r.fatalf("event %d (%s) changes through JSON:\nsent %s\ngot  %s", i, ev.EventName(), raw, mustJSON(r.t, back))
		}
		decoded = r.b.Apply(decoded, back)
	}
	if a, b := mustJSON(r.t, direct), mustJSON(r.t, decoded); !bytes.Equal(a, b) {
		r.fatalf("state from decoded events differs:\ndirect  %s\ndecoded %s", a, b)
	}
	r.state = decoded

	// The snapshot survives a JSON round trip.
	raw := r.stateJSON()
	var back S
	if err := json.Unmarshal(raw, &back); err != nil {
		r.fatalf("state does not decode: %v", err)
	}
	if again := mustJSON(r.t, back); !bytes.Equal(again, raw) {
		r.fatalf("state changes through JSON:\nsent %s\ngot  %s", raw, again)
	}
}

func (r *runner[S]) expectEvents(want []string) {
	r.t.Helper()
	if r.cmdLine == 0 {
		r.fatalf("events: no cmd before")
	}
	if r.err != nil {
		r.errorf("cmd at line %d failed: %v; want events %v", r.cmdLine, r.err, want)
		return
	}
	got := make([]string, len(r.events))
	for i, ev := range r.events {
		got[i] = ev.EventName()
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		r.errorf("events %v, want %v", got, want)
	}
}

func (r *runner[S]) expectError(args []string) {
	r.t.Helper()
	if r.cmdLine == 0 {
		r.fatalf("error: no cmd before")
	}
	if len(args) == 0 {
		r.fatalf("error: want a code")
	}
	if r.err == nil {
		r.errorf("cmd at line %d succeeded with %d events; want error %s", r.cmdLine, len(r.events), args[0])
		return
	}
	var de *grains.Error
	if !errors.As(r.err, &de) {
		r.errorf("error %T %v is not a *grains.Error", r.err, r.err)
		return
	}
	if string(de.Code) != args[0] {
		r.errorf("error %v, want code %s", de, args[0])
		return
	}
	if de.Message == "" {
		r.errorf("error %s has no message", de.Code)
	}
	if len(args) > 1 {
		got := make([]string, len(de.Violations))
		for i, v := range de.Violations {
			got[i] = v.Pointer
		}
		if strings.Join(got, " ") != strings.Join(args[1:], " ") {
			r.errorf("violation pointers %v, want %v (%v)", got, args[1:], de)
		}
	}
}

func (r *runner[S]) expectFields(what string, doc []byte, spec string) {
	r.t.Helper()
	kvs, err := parseAssignments(spec)
	if err != nil {
		r.fatalf("%s: %v", what, err)
	}
	if len(kvs) == 0 {
		r.fatalf("%s: nothing to check", what)
	}
	var root any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		r.fatalf("%s: %v", what, err)
	}
	for _, kv := range kvs {
		v, ok := lookup(root, kv.key)
		if kv.value == "*" {
			if !ok || v == nil || v == "" {
				r.errorf("%s: %s is missing or empty", what, kv.key)
			}
			continue
		}
		got := "<missing>"
		if ok {
			got = render(v)
		}
		if got != kv.value {
			r.errorf("%s: %s = %s, want %s", what, kv.key, got, kv.value)
		}
	}
}

// timerChanges merges the timer effects of the last cmd's events: the
// timers set and the IDs cancelled, a later event's change winning.
func (r *runner[S]) timerChanges() (map[string]grains.Timer, map[string]bool) {
	set, cancelled := map[string]grains.Timer{}, map[string]bool{}
	for _, ev := range r.events {
		te, ok := ev.(grains.TimerEffects)
		if !ok {
			continue
		}
		s, c := te.Timers()
		for _, id := range c {
			delete(set, id)
			cancelled[id] = true
		}
		for _, t := range s {
			delete(cancelled, t.ID)
			set[t.ID] = t
		}
	}
	return set, cancelled
}

func (r *runner[S]) expectTimers(spec string) {
	r.t.Helper()
	if r.cmdLine == 0 || r.err != nil {
		r.fatalf("timers: the last cmd did not succeed")
	}
	kvs, err := parseAssignments(spec)
	if err != nil {
		r.fatalf("timers: %v", err)
	}
	set, cancelled := r.timerChanges()
	var got []string
	for id, t := range set {
		got = append(got, id+"="+t.At.UTC().Format(time.RFC3339Nano))
	}
	for id := range cancelled {
		got = append(got, id+"=cancel")
	}
	var want []string
	for _, kv := range kvs {
		if kv.value != "cancel" {
			ts, err := time.Parse(time.RFC3339Nano, kv.value)
			if err != nil {
				r.fatalf("timers %s: %v", kv.key, err)
			}
			kv.value = ts.UTC().Format(time.RFC3339Nano)
		}
		want = append(want, kv.key+"="+kv.value)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		r.errorf("timers %v, want %v", got, want)
	}
}

func (r *runner[S]) stateJSON() []byte { return mustJSON(r.t, r.state) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// lookup follows a dotted path through decoded JSON.
func lookup(v any, path string) (any, bool) {
	if path == "" || path == "." {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[part]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// render shows a JSON value as the scripts write it: strings bare,
// everything else as compact JSON.
func render(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

type assignment struct{ key, value string }

// parseAssignments splits `a=1 b="two words" c=` into pairs.
func parseAssignments(s string) ([]assignment, error) {
	var out []assignment
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("want key=value at %q", s)
		}
		key := s[:eq]
		if strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("want key=value at %q", s)
		}
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("bad quoted value at %q: %w", s, err)
			}
			val, _ = strconv.Unquote(q)
			s = s[len(q):]
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		out = append(out, assignment{key, val})
	}
}
