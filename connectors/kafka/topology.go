package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"gopkg.in/yaml.v3"
)

// TableSuffix is how goka names a group's table topic: "<group>-table".
const TableSuffix = "-table"

// Cleanup policies of a topic.
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
)

// DefaultOwnedPrefixes are the topic-name prefixes Grainline owns: a topic
// on the cluster with one of them that topology.yaml does not declare is
// reported by Diff.
var DefaultOwnedPrefixes = []string{"cpq.", "oms.", "grainline."}

// ErrTopology reports an invalid topology.
var ErrTopology = errors.New("kafka: invalid topology")

// Topology is the decoded topology.yaml: every topic and consumer group.
type Topology struct {
	Topics []Topic `yaml:"topics"`
	Groups []Group `yaml:"groups"`
	// OwnedPrefixes overrides DefaultOwnedPrefixes (tests use their own).
	OwnedPrefixes []string `yaml:"owned_prefixes,omitempty"`

	prefix string // set by WithPrefix; stripped before checking names
}

// WithPrefix returns a copy of t with prefix prepended to every topic, group,
// table and consumer name, for several deployments (or tests) sharing one
// Kafka. Its owned prefix is prefix alone, so Diff ignores everybody else's
// topics; names are validated as if the prefix were not there.
func (t Topology) WithPrefix(prefix string) Topology {
	pre := func(names []string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = prefix + n
		}
		return out
	}
	c := Topology{OwnedPrefixes: []string{prefix}, prefix: t.prefix + prefix}
	for _, tp := range t.Topics {
		tp.Name = prefix + tp.Name
		tp.Consumers = pre(tp.Consumers)
		c.Topics = append(c.Topics, tp)
	}
	for _, g := range t.Groups {
		g.Name = prefix + g.Name
		g.Inputs = pre(g.Inputs)
		g.Outputs = pre(g.Outputs)
		if g.Table != "" {
			g.Table = prefix + g.Table
		}
		c.Groups = append(c.Groups, g)
	}
	return c
}

// Topic is one topic: its owner, key, size and retention.
type Topic struct {
	Name        string `yaml:"name"`
	Owner       string `yaml:"owner"`
	Key         string `yaml:"key"`
	Partitions  int32  `yaml:"partitions"`
	Replication int16  `yaml:"replication"`
	// Retention is a Go duration ("168h"), a number of days ("7d") or
	// "infinite". Required unless Cleanup is "compact".
	Retention string `yaml:"retention,omitempty"`
	// Cleanup is "delete" (default), "compact" or "compact,delete".
	Cleanup   string   `yaml:"cleanup,omitempty"`
	Consumers []string `yaml:"consumers"`
}

// Group is one consumer group (a goka processor or a worker pool).
type Group struct {
	Name    string   `yaml:"name"`
	Inputs  []string `yaml:"inputs"`
	Outputs []string `yaml:"outputs,omitempty"`
	// Table is the group's goka table topic; it must be Name+"-table".
	Table string `yaml:"table,omitempty"`
}

// Load decodes and validates a topology document. Unknown fields are errors.
func Load(data []byte) (Topology, error) {
	var t Topology
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("%w: decode: %w", ErrTopology, err)
	}
	if err := t.Validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

var (
	topicName = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*\.v[1-9][0-9]*$`)
	// Platform topics that belong to no aggregate: grainline.<kind>.v<N>.
	platformTopicName = regexp.MustCompile(`^grainline\.[a-z][a-z0-9-]*\.v[1-9][0-9]*$`)
)

// Validate checks the rules below and reports every violation at once:
//   - topic names are unique and follow <domain>.<aggregate>.<kind>.v<N>
//     (lower case), except platform topics that belong to no aggregate,
//     grainline.<kind>.v<N> (the dead-letter topic), and a group's table
//     topic "<group>-table";
//   - every topic has an owner and a key, partitions >= 1 and
//     replication >= 1;
//   - cleanup is delete, compact or "compact,delete"; retention parses
//     (Go duration, "<N>d" or "infinite") and is required unless the topic is
//     only compacted;
//   - group names are unique and non-empty; a group has at least one input;
//     every input and output is a declared topic;
//   - a group's table is named "<group>-table" (as goka names it), is a
//     declared topic and is compacted;
//   - a group's inputs and its table have one partition count (goka
//     co-partitions them);
//   - every topic consumer is a declared group that lists the topic as an
//     input, and every group input lists the group as a consumer.
func (t Topology) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrTopology}, args...)...))
	}
	topics := make(map[string]Topic, len(t.Topics))
	groups := make(map[string]Group, len(t.Groups))
	for _, g := range t.Groups {
		if g.Name == "" {
			bad("group without a name")
			continue
		}
		if _, dup := groups[g.Name]; dup {
			bad("group %s declared twice", g.Name)
		}
		groups[g.Name] = g
	}
	tables := make(map[string]string) // table topic -> group
	for _, g := range t.Groups {
		if g.Table != "" {
			tables[g.Table] = g.Name
		}
	}
	for _, tp := range t.Topics {
		if _, dup := topics[tp.Name]; dup {
			bad("topic %s declared twice", tp.Name)
		}
		topics[tp.Name] = tp
		bare := strings.TrimPrefix(tp.Name, t.prefix)
		if _, isTable := tables[tp.Name]; !isTable && !topicName.MatchString(bare) && !platformTopicName.MatchString(bare) {
			bad("topic %q does not follow <domain>.<aggregate>.<kind>.v<N>", tp.Name)
		}
		if tp.Owner == "" || tp.Key == "" {
			bad("topic %s needs an owner and a key", tp.Name)
		}
		if tp.Partitions < 1 {
			bad("topic %s: partitions %d < 1", tp.Name, tp.Partitions)
		}
		if tp.Replication < 1 {
			bad("topic %s: replication %d < 1", tp.Name, tp.Replication)
		}
		switch tp.cleanup() {
		case CleanupDelete, CleanupCompact, "compact,delete":
		default:
			bad("topic %s: cleanup %q is not delete, compact or compact,delete", tp.Name, tp.Cleanup)
		}
		if tp.Retention == "" {
			if tp.cleanup() != CleanupCompact {
				bad("topic %s: retention is required unless cleanup is compact", tp.Name)
			}
		} else if _, err := ParseRetention(tp.Retention); err != nil {
			bad("topic %s: %v", tp.Name, err)
		}
		for _, c := range tp.Consumers {
			g, ok := groups[c]
			if !ok {
				bad("topic %s: consumer %s is not a declared group", tp.Name, c)
			} else if !slices.Contains(g.Inputs, tp.Name) {
				bad("topic %s: consumer %s does not list it as an input", tp.Name, c)
			}
		}
	}
	for _, g := range t.Groups {
		if g.Name == "" {
			continue
		}
		if len(g.Inputs) == 0 {
			bad("group %s has no inputs", g.Name)
		}
		parts := map[int32][]string{}
		for _, in := range g.Inputs {
			tp, ok := topics[in]
			if !ok {
				bad("group %s: input %s is not a declared topic", g.Name, in)
				continue
			}
			if !slices.Contains(tp.Consumers, g.Name) {
				bad("group %s: input %s does not list it as a consumer", g.Name, in)
			}
			parts[tp.Partitions] = append(parts[tp.Partitions], in)
		}
		for _, out := range g.Outputs {
			if _, ok := topics[out]; !ok {
				bad("group %s: output %s is not a declared topic", g.Name, out)
			}
		}
		if g.Table != "" {
			if g.Table != g.Name+TableSuffix {
				bad("group %s: table %s must be named %s (goka's table topic)", g.Name, g.Table, g.Name+TableSuffix)
			}
			tp, ok := topics[g.Table]
			switch {
			case !ok:
				bad("group %s: table %s is not a declared topic", g.Name, g.Table)
			case tp.cleanup() != CleanupCompact:
				bad("group %s: table %s must have cleanup compact, has %s", g.Name, g.Table, tp.cleanup())
			default:
				parts[tp.Partitions] = append(parts[tp.Partitions], g.Table)
			}
		}
		if len(parts) > 1 {
			bad("group %s: inputs and table are not co-partitioned: %v", g.Name, parts)
		}
	}
	return errors.Join(errs...)
}

func (tp Topic) cleanup() string {
	if tp.Cleanup == "" {
		return CleanupDelete
	}
	return tp.Cleanup
}

// retentionMS is the topic's retention.ms, "" when not set.
func (tp Topic) retentionMS() string {
	if tp.Retention == "" {
		return ""
	}
	d, err := ParseRetention(tp.Retention)
	if err != nil {
		return ""
	}
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// configEntries is the topic configuration Apply sets and Diff compares.
func (tp Topic) configEntries() map[string]string {
	c := map[string]string{"cleanup.policy": tp.cleanup()}
	if ms := tp.retentionMS(); ms != "" {
		c["retention.ms"] = ms
	}
	return c
}

// ParseRetention parses a retention: a Go duration ("168h"), whole days
// ("7d") or "infinite" (returned as -1).
func ParseRetention(s string) (time.Duration, error) {
	if s == "infinite" || s == "-1" {
		return -1, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("retention %q: want <N>d with N >= 1", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("retention %q: %w", s, err)
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("retention %q: below 1ms", s)
	}
	return d, nil
}

// Admin is the part of sarama.ClusterAdmin that Apply and Diff use.
type Admin interface {
	ListTopics() (map[string]sarama.TopicDetail, error)
	CreateTopic(topic string, detail *sarama.TopicDetail, validateOnly bool) error
	DescribeConfig(resource sarama.ConfigResource) ([]sarama.ConfigEntry, error)
}

var _ Admin = sarama.ClusterAdmin(nil)

// Apply creates every declared topic that does not exist yet, with its
// partitions, replication, retention.ms and cleanup.policy, and returns the
// names it created. It changes no existing topic: Diff reports those.
func Apply(ctx context.Context, admin Admin, t Topology) (created []string, err error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, fmt.Errorf("kafka: list topics: %w", err)
	}
	for _, tp := range t.Topics {
		if err := ctx.Err(); err != nil {
			return created, err
		}
		if _, ok := existing[tp.Name]; ok {
			continue
		}
		cfg := map[string]*string{}
		for k, v := range tp.configEntries() {
			cfg[k] = &v
		}
		err := admin.CreateTopic(tp.Name, &sarama.TopicDetail{
			NumPartitions:     tp.Partitions,
			ReplicationFactor: tp.Replication,
			ConfigEntries:     cfg,
		}, false)
		if errors.Is(err, sarama.ErrTopicAlreadyExists) {
			continue // created concurrently
		}
		if err != nil {
			return created, fmt.Errorf("kafka: create topic %s: %w", tp.Name, err)
		}
		created = append(created, tp.Name)
	}
	return created, nil
}

// DriftKind classifies a Drift.
type DriftKind string

// Kinds of drift between topology.yaml and the cluster.
const (
	DriftMissing     DriftKind = "missing"     // declared, not on the cluster
	DriftPartitions  DriftKind = "partitions"  // partition count differs
	DriftReplication DriftKind = "replication" // replication factor differs
	DriftConfig      DriftKind = "config"      // retention.ms or cleanup.policy differs
	DriftUndeclared  DriftKind = "undeclared"  // on the cluster with an owned prefix, not declared
)

// Drift is one difference between the topology and the cluster.
type Drift struct {
	Kind  DriftKind
	Topic string
	Key   string // the config key, for DriftConfig
	Want  string // declared value ("" for undeclared)
	Got   string // cluster value ("" for missing)
}

// String renders the drift for people, e.g.
// "cpq.quote.events.v1: partitions: declared 6, cluster has 3".
func (d Drift) String() string {
	switch d.Kind {
	case DriftMissing:
		return fmt.Sprintf("%s: missing on the cluster", d.Topic)
	case DriftUndeclared:
		return fmt.Sprintf("%s: on the cluster but not declared in the topology", d.Topic)
	case DriftConfig:
		return fmt.Sprintf("%s: %s: declared %s, cluster has %s", d.Topic, d.Key, d.Want, d.Got)
	default:
		return fmt.Sprintf("%s: %s: declared %s, cluster has %s", d.Topic, d.Kind, d.Want, d.Got)
	}
}

// Diff compares the topology with the cluster: missing topics, partition
// count, replication and configuration (retention.ms, cleanup.policy)
// mismatches, and undeclared topics with an owned prefix. The result is
// sorted by topic; empty means no drift.
func Diff(ctx context.Context, admin Admin, t Topology) ([]Drift, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	existing, err := admin.ListTopics()
	if err != nil {
		return nil, fmt.Errorf("kafka: list topics: %w", err)
	}
	var drifts []Drift
	declared := make(map[string]bool, len(t.Topics))
	for _, tp := range t.Topics {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		declared[tp.Name] = true
		got, ok := existing[tp.Name]
		if !ok {
			drifts = append(drifts, Drift{Kind: DriftMissing, Topic: tp.Name})
			continue
		}
		if got.NumPartitions != tp.Partitions {
			drifts = append(drifts, Drift{Kind: DriftPartitions, Topic: tp.Name,
				Want: strconv.Itoa(int(tp.Partitions)), Got: strconv.Itoa(int(got.NumPartitions))})
		}
		if got.ReplicationFactor != tp.Replication {
			drifts = append(drifts, Drift{Kind: DriftReplication, Topic: tp.Name,
				Want: strconv.Itoa(int(tp.Replication)), Got: strconv.Itoa(int(got.ReplicationFactor))})
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: tp.Name})
		if err != nil {
			return nil, fmt.Errorf("kafka: describe topic %s: %w", tp.Name, err)
		}
		have := make(map[string]string, len(entries))
		for _, e := range entries {
			have[e.Name] = e.Value
		}
		want := tp.configEntries()
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if g := have[k]; g != want[k] {
				drifts = append(drifts, Drift{Kind: DriftConfig, Topic: tp.Name, Key: k, Want: want[k], Got: g})
			}
		}
	}
	prefixes := t.OwnedPrefixes
	if len(prefixes) == 0 {
		prefixes = DefaultOwnedPrefixes
	}
	for name := range existing {
		if declared[name] {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				drifts = append(drifts, Drift{Kind: DriftUndeclared, Topic: name})
				break
			}
		}
	}
	sort.SliceStable(drifts, func(i, j int) bool { return drifts[i].Topic < drifts[j].Topic })
	return drifts, nil
}
