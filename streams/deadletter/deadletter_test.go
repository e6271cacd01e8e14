package deadletter_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/streams/deadletter"
)

func TestParsePosition(t *testing.T) {
	for in, want := range map[string]deadletter.Position{"0:12": {0, 12}, " 3:0 ": {3, 0}} {
		got, err := deadletter.ParsePosition(in)
		if err != nil || got != want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != want.String() {
			t.Errorf("String() = %q", got.String())
		}
	}
	for _, in := range []string{"", "12", "a:1", "1:b", "-1:0", "0:-3", "1:2:3"} {
		if _, err := deadletter.ParsePosition(in); err == nil {
			t.Errorf("ParsePosition(%q) accepted", in)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	at := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	l := deadletter.Letter{Position: deadletter.Position{Partition: 0, Offset: 7}, Record: deadletter.Record{
		OriginalTopic: "cpq.quote.events.v1", TenantID: "acme", Consumer: "oms-intake",
		Category: deadletter.CategoryDecode, At: at}}
	broken := deadletter.Letter{Position: deadletter.Position{Offset: 8}, Err: errors.New("not a record")}
	for _, tc := range []struct {
		name      string
		f         deadletter.Filter
		l, broken bool
	}{
		{"zero", deadletter.Filter{}, true, true},
		{"tenant", deadletter.Filter{Tenant: "acme"}, true, false},
		{"other tenant", deadletter.Filter{Tenant: "globex"}, false, false},
		{"consumer", deadletter.Filter{Consumer: "oms-intake"}, true, false},
		{"other consumer", deadletter.Filter{Consumer: "oms-hub"}, false, false},
		{"category", deadletter.Filter{Category: deadletter.CategoryPermanent}, false, false},
		{"topic", deadletter.Filter{Topic: "cpq.quote.events.v1"}, true, false},
		{"since at", deadletter.Filter{Since: at}, true, false},
		{"since after", deadletter.Filter{Since: at.Add(time.Nanosecond)}, false, false},
		{"position", deadletter.Filter{Positions: []deadletter.Position{{0, 7}}}, true, false},
		{"broken's position", deadletter.Filter{Positions: []deadletter.Position{{0, 8}}}, false, true},
		{"position and tenant", deadletter.Filter{Positions: []deadletter.Position{{0, 7}}, Tenant: "globex"}, false, false},
	} {
		if got := tc.f.Match(l); got != tc.l {
			t.Errorf("%s: Match(record) = %v", tc.name, got)
		}
		if got := tc.f.Match(broken); got != tc.broken {
			t.Errorf("%s: Match(not a record) = %v", tc.name, got)
		}
	}
}

// A record written before Record.Headers existed decodes with nil headers,
// and its replay carries the platform's headers rebuilt from the value.
func TestReplayHeadersOfOldRecords(t *testing.T) {
	env, _ := json.Marshal(kafka.Envelope{EventID: "ev-9", EventType: "OrderCompleted", TenantID: "acme", AggregateID: "ord-9",
		Payload: json.RawMessage(`{}`)})
	cmd, _ := json.Marshal(kafka.CommandMessage{TenantID: "acme", Kind: "order", ID: "ord-9", Command: "create",
		CausationID: "ev-8", Payload: json.RawMessage(`{}`)})
	old := func(value []byte) deadletter.Record {
		b, _ := json.Marshal(map[string]any{"original_topic": "t.x.events.v1", "partition": 2, "offset": 5, "key": "ord-9",
			"value": value, "error": "boom", "category": "decode", "consumer": "g", "attempts": 1,
			"replay": deadletter.ReplayInstruction, "tenant_id": "acme", "at": time.Now()})
		r, err := deadletter.Decode(b)
		if err != nil || r.Headers != nil || r.Key != "ord-9" {
			t.Fatalf("decode old record: %+v, %v", r, err)
		}
		return r
	}
	pos := deadletter.Position{Partition: 0, Offset: 41}
	for name, tc := range map[string]struct {
		r    deadletter.Record
		want map[string]string
	}{
		"envelope": {old(env), map[string]string{"tenant_id": "acme", "event_type": "OrderCompleted", "event_id": "ev-9", "grainline-replay-of": "0:41"}},
		"command":  {old(cmd), map[string]string{"tenant_id": "acme", "event_id": "ev-8", "grainline-replay-of": "0:41"}},
		"garbage":  {old([]byte("{oops")), map[string]string{"tenant_id": "acme", "grainline-replay-of": "0:41"}},
		"kept": {deadletter.Record{Headers: map[string]string{"tenant_id": "acme", "x": "y", "grainline-replay-of": "0:3",
			"grainline-replay-reason": "the earlier replay's"}, Value: env},
			map[string]string{"tenant_id": "acme", "x": "y", "grainline-replay-of": "0:41"}},
	} {
		got := deadletter.ReplayHeaders(tc.r, pos)
		if len(got) != len(tc.want) {
			t.Errorf("%s: headers %v, want %v", name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: header %s = %q, want %q", name, k, got[k], v)
			}
		}
	}
}

func TestMessageRefusesWhatIsNotARecord(t *testing.T) {
	if _, err := deadletter.Message(deadletter.Letter{Err: errors.New("bad json")}); !errors.Is(err, deadletter.ErrNotReplayable) {
		t.Errorf("undecodable letter: %v", err)
	}
	if _, err := deadletter.Message(deadletter.Letter{Record: deadletter.Record{Key: "k"}}); !errors.Is(err, deadletter.ErrNotReplayable) {
		t.Errorf("record without topic: %v", err)
	}
	m, err := deadletter.Message(deadletter.Letter{Position: deadletter.Position{Offset: 4},
		Record: deadletter.Record{OriginalTopic: "t", Key: "k", Value: []byte("v"), TenantID: "acme"}})
	if err != nil || m.Topic != "t" || len(m.Headers) != 2 || string(m.Headers[0].Key) != "grainline-replay-of" ||
		string(m.Headers[0].Value) != "0:4" || string(m.Headers[1].Key) != "tenant_id" {
		t.Errorf("message = %+v, %v", m, err)
	}
}
