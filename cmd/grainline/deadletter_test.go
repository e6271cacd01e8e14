package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/streams/deadletter"
	"github.com/grainline/grainline/streams/streamtest"
)

// deadletter list filters the records of a platform's dead-letter topic;
// replay re-publishes the chosen ones to their original topics in the
// partition of their key, refuses a topic topology.yaml does not declare
// unless forced, and a dry run sends nothing.
func TestDeadletterListAndReplay(t *testing.T) {
	streamtest.Each(t, func(t *testing.T, b *streamtest.Broker) {
		prefix := "dl" + testenv.RandomSuffix() + "-"
		topo, err := kafka.Load(grainline.TopologyYAML)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sarama.NewClusterAdmin(b.Brokers, streamtest.Sarama())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		created, err := kafka.Apply(ctx, admin, platform.NamespacedTopology(topo, prefix))
		if err != nil {
			t.Fatal(err)
		}
		if b.Name == "kafka" {
			t.Cleanup(func() {
				for _, topic := range created {
					_ = admin.DeleteTopic(topic)
				}
			})
		}
		events := prefix + "cpq.quote.events.v1"
		commands := prefix + "oms.order.commands.v1"
		typo := prefix + "oms.typo.events.v1"
		dlq := platform.NamespacedTopic(prefix, "grainline.deadletter.v1")
		b.CreateTopic(t, typo, 1, false)
		for _, topic := range []string{events, commands, dlq} {
			waitForTopic(t, admin, topic)
		}

		// The partition goka would read key q-1 from.
		part, err := kafka.Config{}.Sarama().Producer.Partitioner(events).Partition(
			&sarama.ProducerMessage{Key: sarama.StringEncoder("q-1")}, 6)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		cmd, _ := json.Marshal(kafka.CommandMessage{TenantID: "globex", Kind: "order", ID: "ord-2", Command: "create",
			IdempotencyKey: "quote-accepted:ev-2", CausationID: "ev-2", Payload: json.RawMessage(`{}`)})
		records := []deadletter.Record{
			{OriginalTopic: events, Partition: part, Offset: 4, Key: "q-1", Value: []byte("{not json"), Error: "kafka: decode envelope: invalid character 'n'",
				Category: deadletter.CategoryDecode, Consumer: prefix + "oms-intake", Attempts: 1, TenantID: "acme", At: now.Add(-time.Hour),
				Headers: map[string]string{kafka.HeaderTenant: "acme", kafka.HeaderEventID: "ev-1"}},
			// Written before records kept headers: the replay rebuilds them.
			{OriginalTopic: commands, Partition: 1, Offset: 9, Key: "ord-2", Value: cmd, Error: "invalid_transition: order ord-2 is not ready",
				Category: deadletter.CategoryPermanent, Consumer: prefix + "oms-order-router", Attempts: 1, TenantID: "globex", At: now},
			{OriginalTopic: typo, Partition: 0, Offset: 1, Key: "q-3", Value: []byte("x"), Error: strings.Repeat("very long error ", 20),
				Category: deadletter.CategoryDecode, Consumer: prefix + "oms-intake", Attempts: 1, TenantID: "acme", At: now},
		}
		prod := b.Producer(t)
		for _, r := range records {
			v, _ := json.Marshal(r)
			prod.Send(t, dlq, r.Key, v, map[string]string{deadletter.HeaderTenant: r.TenantID})
		}
		k := strings.Join(b.Brokers, ",")
		dl := func(args ...string) (int, string, string) {
			return runCode(append(append([]string{"deadletter"}, args...), "-kafka", k, "-topic-prefix", prefix)...)
		}
		lines := func(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

		code, out, errOut := dl("list")
		if code != 0 || len(lines(out)) != 3 || !strings.Contains(errOut, "3 dead letters read") {
			t.Fatalf("list: exit %d, %q %q", code, out, errOut)
		}
		first := lines(out)[0]
		for _, want := range []string{"0:0\t", "tenant=acme", "consumer=" + prefix + "oms-intake", fmt.Sprintf("origin=%s/%d@4", events, part), "category=decode", "attempts=1"} {
			if !strings.Contains(first, want) {
				t.Errorf("list line %q lacks %q", first, want)
			}
		}
		if long := lines(out)[2]; !strings.Contains(long, "…") || len(long) > 400 {
			t.Errorf("a long error is not shortened: %q", long)
		}
		for _, tc := range []struct {
			args []string
			want []string // positions listed
		}{
			{[]string{"-tenant", "acme"}, []string{"0:0", "0:2"}},
			{[]string{"-consumer", "oms-order-router"}, []string{"0:1"}},
			{[]string{"-category", "permanent"}, []string{"0:1"}},
			{[]string{"-topic", "cpq.quote.events.v1"}, []string{"0:0"}},
			{[]string{"-since", "30m"}, []string{"0:1", "0:2"}},
			{[]string{"-since", now.Add(-2 * time.Hour).Format(time.RFC3339)}, []string{"0:0", "0:1", "0:2"}},
			{[]string{"-tenant", "acme", "-dlq-offset", "0:2,0:1"}, []string{"0:2"}},
			{[]string{"-tenant", "nobody"}, nil},
		} {
			code, out, errOut := dl(append([]string{"list"}, tc.args...)...)
			var got []string
			for _, l := range lines(out) {
				if l != "" {
					got = append(got, strings.SplitN(l, "\t", 2)[0])
				}
			}
			if code != 0 || strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("list %v: exit %d, %v, want %v (%s)", tc.args, code, got, tc.want, errOut)
			}
		}
		code, out, _ = dl("list", "-json", "-consumer", "oms-order-router")
		var j struct {
			DLQPartition int32  `json:"dlq_partition"`
			DLQOffset    int64  `json:"dlq_offset"`
			Tenant       string `json:"tenant_id"`
			Topic        string `json:"original_topic"`
			ValueText    string `json:"value_text"`
		}
		if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.DLQOffset != 1 || j.Tenant != "globex" ||
			j.Topic != commands || j.ValueText != string(cmd) {
			t.Errorf("list -json: exit %d, %q (%v)", code, out, err)
		}
		if code, _, errOut := dl("list", "-category", "fatal"); code != 2 || !strings.Contains(errOut, "-category") {
			t.Errorf("unknown category: exit %d, %q", code, errOut)
		}
		if code, _, errOut := dl("list", "-since", "yesterday"); code != 2 || !strings.Contains(errOut, "-since") {
			t.Errorf("bad -since: exit %d, %q", code, errOut)
		}

		// Replay needs a filter or -all; a topic topology.yaml does not
		// declare is refused before anything is sent; a missing position too.
		if code, _, errOut := dl("replay"); code != 2 || !strings.Contains(errOut, "-all") {
			t.Errorf("replay without a filter: exit %d, %q", code, errOut)
		}
		if code, _, errOut := dl("replay", "-tenant", "acme"); code != 1 || !strings.Contains(errOut, "refusing to replay to "+typo) {
			t.Errorf("replay to an undeclared topic: exit %d, %q", code, errOut)
		}
		if code, _, errOut := dl("replay", "-dlq-offset", "0:99"); code != 1 || !strings.Contains(errOut, "no dead letter at 0:99") {
			t.Errorf("replay of a missing position: exit %d, %q", code, errOut)
		}
		code, out, errOut = dl("replay", "-dry-run", "-dlq-offset", "0:0,0:1")
		if code != 0 || !strings.Contains(out, fmt.Sprintf("would send\t0:0\t-> %s/%d", events, part)) ||
			!strings.Contains(out, "grainline-replay-of=0:0") || !strings.Contains(out, "replay (dry run): 2 selected, 0 sent, 0 failed") {
			t.Fatalf("dry run: exit %d, %q %q", code, out, errOut)
		}
		if n := len(b.ReadAll(t, events)) + len(b.ReadAll(t, commands)); n != 0 {
			t.Fatalf("the dry run sent %d messages", n)
		}

		code, out, errOut = dl("replay", "-dlq-offset", "0:0", "-dlq-offset", "0:1", "-reason", "INC-42 fixed")
		if code != 0 || !strings.Contains(out, "replay: 2 selected, 2 sent, 0 failed") {
			t.Fatalf("replay: exit %d, %q %q", code, out, errOut)
		}
		ev := b.ReadAll(t, events)
		if len(ev) != 1 || ev[0].Partition != part || ev[0].Key != "q-1" || string(ev[0].Value) != "{not json" ||
			ev[0].Headers[kafka.HeaderTenant] != "acme" || ev[0].Headers[kafka.HeaderEventID] != "ev-1" ||
			ev[0].Headers[deadletter.HeaderReplayOf] != "0:0" || ev[0].Headers[deadletter.HeaderReplayReason] != "INC-42 fixed" {
			t.Errorf("replayed event: %+v", ev)
		}
		cm := b.ReadAll(t, commands)
		if len(cm) != 1 || cm[0].Key != "ord-2" || string(cm[0].Value) != string(cmd) ||
			cm[0].Headers[kafka.HeaderTenant] != "globex" || cm[0].Headers[kafka.HeaderEventID] != "ev-2" ||
			cm[0].Headers[deadletter.HeaderReplayOf] != "0:1" {
			t.Errorf("replayed command: %+v", cm)
		}

		code, out, errOut = dl("replay", "-force", "-dlq-offset", "0:2")
		if code != 0 || !strings.Contains(out, "replay: 1 selected, 1 sent, 0 failed") {
			t.Fatalf("forced replay: exit %d, %q %q", code, out, errOut)
		}
		if ty := b.ReadAll(t, typo); len(ty) != 1 || ty[0].Key != "q-3" {
			t.Errorf("forced replay: %+v", ty)
		}
	})
}
