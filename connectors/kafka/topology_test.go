package kafka_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/internal/testenv"
)

func TestTopologyYAMLIsValid(t *testing.T) {
	top, err := kafka.Load(grainline.TopologyYAML)
	if err != nil {
		t.Fatalf("topology.yaml: %v", err)
	}
	if len(top.Topics) == 0 || len(top.Groups) == 0 {
		t.Fatalf("topology.yaml decoded empty: %+v", top)
	}
	for _, g := range top.Groups {
		if g.Table != "" && g.Table != g.Name+kafka.TableSuffix {
			t.Errorf("group %s: table %s is not goka's table topic name", g.Name, g.Table)
		}
		// Every processor dead-letters what it cannot handle.
		if !slices.Contains(g.Outputs, "grainline.deadletter.v1") {
			t.Errorf("group %s: outputs %v lack grainline.deadletter.v1", g.Name, g.Outputs)
		}
	}
}

func validTopology() kafka.Topology {
	return kafka.Topology{
		Topics: []kafka.Topic{
			{Name: "cpq.quote.events.v1", Owner: "quote", Key: "quote id", Partitions: 6, Replication: 1, Retention: "7d", Consumers: []string{"oms-status"}},
			{Name: "oms.order.commands.v1", Owner: "oms-status", Key: "order id", Partitions: 6, Replication: 1, Retention: "168h"},
			{Name: "oms-status-table", Owner: "oms-status", Key: "quote id", Partitions: 6, Replication: 1, Cleanup: "compact"},
		},
		Groups: []kafka.Group{{Name: "oms-status", Inputs: []string{"cpq.quote.events.v1"}, Outputs: []string{"oms.order.commands.v1"}, Table: "oms-status-table"}},
	}
}

func TestTopologyValidate(t *testing.T) {
	if err := validTopology().Validate(); err != nil {
		t.Fatalf("valid topology rejected: %v", err)
	}
	cases := map[string]struct {
		edit func(*kafka.Topology)
		want string
	}{
		"bad name":           {func(t *kafka.Topology) { t.Topics[1].Name = "orders" }, "does not follow"},
		"upper case":         {func(t *kafka.Topology) { t.Topics[1].Name = "OMS.order.commands.v1" }, "does not follow"},
		"no version":         {func(t *kafka.Topology) { t.Topics[1].Name = "oms.order.commands" }, "does not follow"},
		"duplicate topic":    {func(t *kafka.Topology) { t.Topics[1].Name = "cpq.quote.events.v1" }, "declared twice"},
		"zero partitions":    {func(t *kafka.Topology) { t.Topics[1].Partitions = 0 }, "partitions 0"},
		"zero replication":   {func(t *kafka.Topology) { t.Topics[1].Replication = 0 }, "replication 0"},
		"bad retention":      {func(t *kafka.Topology) { t.Topics[1].Retention = "a week" }, "retention"},
		"missing retention":  {func(t *kafka.Topology) { t.Topics[1].Retention = "" }, "retention is required"},
		"bad cleanup":        {func(t *kafka.Topology) { t.Topics[1].Cleanup = "forget" }, "cleanup"},
		"no owner":           {func(t *kafka.Topology) { t.Topics[1].Owner = "" }, "owner"},
		"undeclared input":   {func(t *kafka.Topology) { t.Groups[0].Inputs = []string{"cpq.quote.events.v2"} }, "input cpq.quote.events.v2 is not a declared topic"},
		"undeclared output":  {func(t *kafka.Topology) { t.Groups[0].Outputs = []string{"oms.order.commands.v9"} }, "output oms.order.commands.v9"},
		"table name":         {func(t *kafka.Topology) { t.Groups[0].Table = "cpq.quote.events.v1" }, "must be named oms-status-table"},
		"table not compact":  {func(t *kafka.Topology) { t.Topics[2].Cleanup = "delete"; t.Topics[2].Retention = "1h" }, "must have cleanup compact"},
		"table undeclared":   {func(t *kafka.Topology) { t.Topics = t.Topics[:2] }, "table oms-status-table is not a declared topic"},
		"not co-partitioned": {func(t *kafka.Topology) { t.Topics[2].Partitions = 3 }, "co-partitioned"},
		"duplicate group":    {func(t *kafka.Topology) { t.Groups = append(t.Groups, t.Groups[0]) }, "group oms-status declared twice"},
		"unknown consumer":   {func(t *kafka.Topology) { t.Topics[1].Consumers = []string{"nobody"} }, "consumer nobody is not a declared group"},
		"consumer not input": {func(t *kafka.Topology) { t.Topics[0].Consumers = nil }, "does not list it as a consumer"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			top := validTopology()
			top.Topics = slices.Clone(top.Topics)
			top.Groups = slices.Clone(top.Groups)
			tc.edit(&top)
			err := top.Validate()
			if !errors.Is(err, kafka.ErrTopology) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrTopology containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadRejectsUnknownFields(t *testing.T) {
	_, err := kafka.Load([]byte("topics:\n  - name: cpq.quote.events.v1\n    partitons: 3\n"))
	if !errors.Is(err, kafka.ErrTopology) {
		t.Fatalf("Load = %v, want ErrTopology", err)
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"168h": 168 * time.Hour, "7d": 7 * 24 * time.Hour, "infinite": -1, "90m": 90 * time.Minute} {
		if got, err := kafka.ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "xd", "week", "0s"} {
		if _, err := kafka.ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) accepted", in)
		}
	}
}

// suffixedTopology is a small topology with a group table, every name unique.
func suffixedTopology() kafka.Topology {
	p := "t" + testenv.RandomSuffix()
	group := p + "-status"
	return kafka.Topology{
		OwnedPrefixes: []string{p + "."},
		Topics: []kafka.Topic{
			{Name: p + ".quote.events.v1", Owner: "quote", Key: "quote id", Partitions: 4, Replication: 1, Retention: "168h", Consumers: []string{group}},
			{Name: p + ".platform.deadletter.v1", Owner: "platform", Key: "original key", Partitions: 1, Replication: 1, Retention: "720h"},
			{Name: group + kafka.TableSuffix, Owner: group, Key: "quote id", Partitions: 4, Replication: 1, Cleanup: "compact"},
		},
		Groups: []kafka.Group{{Name: group, Inputs: []string{p + ".quote.events.v1"}, Table: group + kafka.TableSuffix}},
	}
}

func TestTopologyApplyAndDiff(t *testing.T) {
	forEachBroker(t, func(t *testing.T, _ brokerKind, brokers []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		admin := newAdmin(t, brokers)
		top := suffixedTopology()
		cleanupTopology(t, brokers, top)

		drifts, err := kafka.Diff(ctx, admin, top)
		if err != nil {
			t.Fatal(err)
		}
		if len(drifts) != len(top.Topics) {
			t.Fatalf("before apply: %v, want every topic missing", drifts)
		}
		for _, d := range drifts {
			if d.Kind != kafka.DriftMissing || !strings.Contains(d.String(), "missing") {
				t.Errorf("before apply: %v", d)
			}
		}

		created, err := kafka.Apply(ctx, admin, top)
		if err != nil {
			t.Fatal(err)
		}
		if len(created) != len(top.Topics) {
			t.Fatalf("created %v, want all %d topics", created, len(top.Topics))
		}
		eventually(t, 30*time.Second, "no drift after apply", func() bool {
			drifts, err = kafka.Diff(ctx, admin, top)
			return err == nil && len(drifts) == 0
		})
		if again, err := kafka.Apply(ctx, admin, top); err != nil || len(again) != 0 {
			t.Fatalf("second apply created %v (%v), want nothing", again, err)
		}

		// Drift: the cluster gains partitions and a retention change, a
		// declared topic disappears from the file's view of the cluster, and
		// an undeclared owned topic appears.
		events := top.Topics[0].Name
		if err := admin.CreatePartitions(events, 6, nil, false); err != nil {
			t.Fatal(err)
		}
		week := "86400000"
		if err := admin.AlterConfig(sarama.TopicResource, top.Topics[1].Name, map[string]*string{"retention.ms": &week}, false); err != nil {
			t.Fatal(err)
		}
		stray := strings.TrimSuffix(top.OwnedPrefixes[0], ".") + ".stray.events.v1"
		if err := admin.CreateTopic(stray, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
		missing := top
		missing.Topics = append(slices.Clone(top.Topics), kafka.Topic{Name: strings.TrimSuffix(top.OwnedPrefixes[0], ".") + ".order.events.v1", Owner: "order", Key: "order id", Partitions: 2, Replication: 1, Retention: "1h"})

		want := map[string]bool{
			events + ": partitions: declared 4, cluster has 6":                               true,
			top.Topics[1].Name + ": retention.ms: declared 2592000000, cluster has 86400000": true,
			stray + ": on the cluster but not declared in the topology":                      true,
			missing.Topics[3].Name + ": missing on the cluster":                              true,
		}
		var got []string
		eventually(t, 30*time.Second, "the four drifts", func() bool {
			drifts, err := kafka.Diff(ctx, admin, missing)
			if err != nil {
				return false
			}
			got = got[:0]
			for _, d := range drifts {
				got = append(got, d.String())
			}
			if len(got) != len(want) {
				return false
			}
			for _, s := range got {
				if !want[s] {
					return false
				}
			}
			return true
		})
		t.Logf("drift reported: %q", got)
	})
}

func TestTopologyWithPrefix(t *testing.T) {
	base, err := kafka.Load(grainline.TopologyYAML)
	if err != nil {
		t.Fatal(err)
	}
	top := base.WithPrefix("it-" + testenv.RandomSuffix() + "-")
	if err := top.Validate(); err != nil {
		t.Fatalf("prefixed topology.yaml: %v", err)
	}
	pre := top.OwnedPrefixes[0]
	for i, tp := range top.Topics {
		if tp.Name != pre+base.Topics[i].Name {
			t.Errorf("topic %s not prefixed", tp.Name)
		}
	}
	for _, g := range top.Groups {
		if g.Table != "" && g.Table != g.Name+kafka.TableSuffix {
			t.Errorf("group %s: table %s is not goka's name", g.Name, g.Table)
		}
	}
	if base.Topics[0].Name != "cpq.quote.events.v1" || base.Groups[0].Inputs[0] != "cpq.quote.events.v1" {
		t.Errorf("WithPrefix changed the original: %+v", base.Groups[0])
	}
	bad := top
	bad.Topics = slices.Clone(top.Topics)
	bad.Topics[0].Name = pre + "quotes"
	if err := bad.Validate(); !errors.Is(err, kafka.ErrTopology) {
		t.Errorf("bad name under a prefix accepted: %v", err)
	}

	e := startEmbedded(t, kafka.EmbeddedConfig{})
	applyTopology(t, e.Brokers(), top)
	drifts, err := kafka.Diff(context.Background(), newAdmin(t, e.Brokers()), top)
	if err != nil || len(drifts) != 0 {
		t.Fatalf("prefixed topology after apply: %v, %v", drifts, err)
	}
}

// A test's topology leaves nothing on the shared real Kafka: its topics
// (including undeclared ones under its prefix) and its groups are deleted
// when the test ends; other topics stay.
func TestApplyTopologyCleansUp(t *testing.T) {
	brokers := testenv.Kafka(t)
	outer, outerTopic := streamTopology(1)
	applyTopology(t, brokers, outer) // the enclosing test's own, kept until it ends
	top := suffixedTopology()
	events := top.Topics[0].Name
	group := top.Groups[0].Name
	stray := strings.TrimSuffix(top.OwnedPrefixes[0], ".") + ".stray.events.v1"
	t.Run("user", func(t *testing.T) {
		applyTopology(t, brokers, top)
		if err := newAdmin(t, brokers).CreateTopic(stray, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
		produce(t, brokers, events, 0, 1)
		consumeGroup(t, brokers, group, events, 1)
	})
	admin := newAdmin(t, brokers)
	eventually(t, 30*time.Second, "the subtest's topics and group deleted", func() bool {
		topics, err := admin.ListTopics()
		if err != nil {
			return false
		}
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			return false
		}
		if _, ok := groups[group]; ok {
			return false
		}
		for name := range topics {
			if strings.HasPrefix(name, top.OwnedPrefixes[0]) || name == top.Topics[2].Name {
				return false
			}
		}
		return true
	})
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics[outerTopic]; !ok {
		t.Fatalf("topic %s of the enclosing test deleted", outerTopic)
	}
}
