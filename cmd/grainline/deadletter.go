package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/streams/deadletter"
)

// deadLetterTopic is the dead-letter topic of topology.yaml.
const deadLetterTopic = "grainline.deadletter.v1"

// errReplayFailed: some selected dead letters could not be replayed (exit
// status 1, after the summary).
var errReplayFailed = errors.New("replay failed")

// dlFlags are the flags list and replay share.
type dlFlags struct {
	brokers, prefix, dlq                     *string
	tenant, consumer, category, topic, since *string
	positions                                []deadletter.Position
	timeout                                  *time.Duration
}

func addDLFlags(fs *flag.FlagSet) *dlFlags {
	f := &dlFlags{
		brokers:  fs.String("kafka", envOr("GRAINLINE_KAFKA", ""), "comma-separated Kafka brokers (env GRAINLINE_KAFKA)"),
		prefix:   fs.String("topic-prefix", "", "the -topic-prefix of the platform whose dead letters to read (tests, shared Kafka)"),
		dlq:      fs.String("dlq", deadLetterTopic, "the dead-letter topic (the -topic-prefix applies)"),
		tenant:   fs.String("tenant", "", "only records of this tenant"),
		consumer: fs.String("consumer", "", "only records dead-lettered by this consumer group, e.g. oms-intake"),
		category: fs.String("category", "", "only records of this category: decode or permanent"),
		topic:    fs.String("topic", "", "only records whose original topic is this, e.g. cpq.quote.events.v1"),
		since:    fs.String("since", "", "only records dead-lettered since: a duration back from now (2h) or an RFC 3339 time"),
		timeout:  fs.Duration("timeout", 2*time.Minute, "bound on the whole command"),
	}
	fs.Func("dlq-offset", "only the record at this dead-letter position partition:offset (repeatable, or comma-separated)", func(s string) error {
		for _, part := range strings.Split(s, ",") {
			p, err := deadletter.ParsePosition(part)
			if err != nil {
				return err
			}
			f.positions = append(f.positions, p)
		}
		return nil
	})
	return f
}

// filter turns the flags into a Filter; topic and consumer names are
// namespaced with the topic prefix unless they carry it already.
func (f *dlFlags) filter(now time.Time) (deadletter.Filter, error) {
	flt := deadletter.Filter{Tenant: *f.tenant, Category: deadletter.Category(*f.category), Positions: f.positions}
	switch flt.Category {
	case "", deadletter.CategoryDecode, deadletter.CategoryPermanent:
	default:
		return flt, fmt.Errorf("-category %q: want %s or %s", *f.category, deadletter.CategoryDecode, deadletter.CategoryPermanent)
	}
	prefix := *f.prefix
	if t := *f.topic; t != "" {
		if prefix != "" && !strings.HasPrefix(t, prefix) {
			t = platform.NamespacedTopic(prefix, t)
		}
		flt.Topic = t
	}
	if c := *f.consumer; c != "" {
		if prefix != "" && !strings.HasPrefix(c, prefix) {
			c = platform.NamespacedGroup(prefix, c)
		}
		flt.Consumer = c
	}
	if s := *f.since; s != "" {
		since, err := parseSince(s, now)
		if err != nil {
			return flt, err
		}
		flt.Since = since
	}
	return flt, nil
}

// parseSince reads a duration back from now ("90m") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("-since %q: a duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-since %q: want a duration (2h) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
	}
	return t, nil
}

// connect opens a Kafka client with the platform's configuration.
func (f *dlFlags) connect() (sarama.Client, kafka.Config, error) {
	kcfg := kafka.Config{Brokers: strings.Split(*f.brokers, ","), ClientID: "grainline-deadletter"}.WithDefaults()
	if err := kcfg.Validate(); err != nil {
		return nil, kcfg, err
	}
	client, err := sarama.NewClient(kcfg.Brokers, kcfg.Sarama())
	if err != nil {
		return nil, kcfg, fmt.Errorf("connect to Kafka: %w", err)
	}
	return client, kcfg, nil
}

func (f *dlFlags) dlqTopic() string {
	if *f.prefix == "" || strings.HasPrefix(*f.dlq, *f.prefix) {
		return *f.dlq
	}
	return platform.NamespacedTopic(*f.prefix, *f.dlq)
}

const deadletterUsage = "usage: grainline deadletter list|replay [-kafka BROKERS] [-tenant T] [-consumer G] [-category C] [-topic T] [-since D] [-dlq-offset P:O] ..."

func runDeadletter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, deadletterUsage)
		return errUsage
	}
	action := args[0]
	fs := newFlags("deadletter "+action, stderr)
	f := addDLFlags(fs)
	var asJSON, dryRun, force, all = new(bool), new(bool), new(bool), new(bool)
	file, reason := new(string), new(string)
	if action == "list" {
		asJSON = fs.Bool("json", false, "one JSON object per record")
	} else {
		dryRun = fs.Bool("dry-run", false, "print what would be sent and send nothing")
		force = fs.Bool("force", false, "also to topics that topology.yaml does not declare as consumed (typo protection off)")
		all = fs.Bool("all", false, "every record (replay refuses to run without a filter otherwise)")
		file = fs.String("file", "", "topology file; default: the topology.yaml built into this binary")
		reason = fs.String("reason", "", "why: sent as header grainline-replay-reason on every replayed message")
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *f.brokers == "" {
		fmt.Fprintf(stderr, "grainline deadletter %s: -kafka or GRAINLINE_KAFKA is required\n", action)
		return errUsage
	}
	flt, err := f.filter(time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "grainline deadletter %s: %v\n", action, err)
		return errUsage
	}
	if action == "replay" && flt.IsZero() && !*all {
		fmt.Fprintln(stderr, "grainline deadletter replay: give a filter (-tenant, -consumer, -category, -topic, -since, -dlq-offset) or -all")
		return errUsage
	}
	var topo kafka.Topology
	if action == "replay" {
		if topo, err = loadTopologyFile(*file); err != nil {
			return err
		}
		topo = platform.NamespacedTopology(topo, *f.prefix)
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	client, kcfg, err := f.connect()
	if err != nil {
		return err
	}
	defer client.Close()
	if action == "list" {
		return listDeadLetters(ctx, client, f.dlqTopic(), flt, *asJSON, stdout, stderr)
	}
	return replayDeadLetters(ctx, client, kcfg, f.dlqTopic(), flt, topo, *dryRun, *force, *reason, stdout)
}

func loadTopologyFile(file string) (kafka.Topology, error) {
	data := grainline.TopologyYAML
	if file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return kafka.Topology{}, err
		}
	}
	return kafka.Load(data)
}

// selectLetters reads the dead-letter topic, calls each for every letter
// flt selects, and returns how many letters were read.
func selectLetters(ctx context.Context, client sarama.Client, dlq string, flt deadletter.Filter, each func(deadletter.Letter) error) (read int, err error) {
	err = deadletter.Read(ctx, client, dlq, func(l deadletter.Letter) error {
		read++
		if !flt.Match(l) {
			return nil
		}
		return each(l)
	})
	return read, err
}

func listDeadLetters(ctx context.Context, client sarama.Client, dlq string, flt deadletter.Filter, asJSON bool, stdout, stderr io.Writer) error {
	enc := json.NewEncoder(stdout)
	listed := 0
	read, err := selectLetters(ctx, client, dlq, flt, func(l deadletter.Letter) error {
		listed++
		if asJSON {
			return enc.Encode(jsonLetter(l))
		}
		_, err := fmt.Fprintln(stdout, formatLetter(l))
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d dead letters read from %s, %d listed\n", read, dlq, listed)
	return nil
}

// letterJSON is one line of `list -json`: the record with its position in
// the dead-letter topic, and its value as text when the value is UTF-8.
type letterJSON struct {
	DLQPartition int32 `json:"dlq_partition"`
	DLQOffset    int64 `json:"dlq_offset"`
	deadletter.Record
	ValueText   string `json:"value_text,omitempty"`
	DecodeError string `json:"decode_error,omitempty"`
}

func jsonLetter(l deadletter.Letter) letterJSON {
	j := letterJSON{DLQPartition: l.Partition, DLQOffset: l.Offset, Record: l.Record}
	if l.Err != nil {
		j.DecodeError = l.Err.Error()
	}
	if len(l.Record.Value) > 0 && utf8.Valid(l.Record.Value) {
		j.ValueText = string(l.Record.Value)
	}
	return j
}

// formatLetter is one line of `list`: position, time, tenant, consumer,
// origin topic/partition@offset, category, attempts, shortened error, and
// the position it was a replay of, if any.
func formatLetter(l deadletter.Letter) string {
	if l.Err != nil {
		return fmt.Sprintf("%s\t%s", l.Position, shorten(l.Err.Error(), 120))
	}
	r := l.Record
	line := fmt.Sprintf("%s\t%s\ttenant=%s\tconsumer=%s\torigin=%s/%d@%d\tcategory=%s\tattempts=%d\terror=%q",
		l.Position, r.At.UTC().Format(time.RFC3339), orDash(r.TenantID), orDash(r.Consumer),
		r.OriginalTopic, r.Partition, r.Offset, orDash(string(r.Category)), r.Attempts, shorten(r.Error, 100))
	if of := r.ReplayOf(); of != "" {
		line += "\treplay-of=" + of
	}
	return line
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shorten cuts s to n runes on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func replayDeadLetters(ctx context.Context, client sarama.Client, kcfg kafka.Config, dlq string, flt deadletter.Filter,
	topo kafka.Topology, dryRun, force bool, reason string, stdout io.Writer) error {
	var selected []deadletter.Letter
	if _, err := selectLetters(ctx, client, dlq, flt, func(l deadletter.Letter) error {
		selected = append(selected, l)
		return nil
	}); err != nil {
		return err
	}
	// Every check comes before the first send: a typo sends nothing.
	found := map[deadletter.Position]bool{}
	for _, l := range selected {
		found[l.Position] = true
	}
	for _, p := range flt.Positions {
		if !found[p] {
			return fmt.Errorf("no dead letter at %s in %s matches the filters", p, dlq)
		}
	}
	if !force {
		if bad := undeclaredTargets(selected, topo); len(bad) > 0 {
			return fmt.Errorf("refusing to replay to %s: not a topic that topology.yaml declares with consumers (-force replays anyway)",
				strings.Join(bad, ", "))
		}
	}
	sarCfg := kcfg.Sarama()
	r := &deadletter.Replayer{Partitions: client.Partitions, Partitioner: sarCfg.Producer.Partitioner, DryRun: dryRun, Reason: reason}
	if !dryRun {
		prod, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			return fmt.Errorf("producer: %w", err)
		}
		defer prod.Close()
		r.Producer = prod
	}
	sent, failed := 0, 0
	for _, l := range selected {
		if err := ctx.Err(); err != nil {
			fmt.Fprintf(stdout, "failed\t%s\tnot sent: %v\n", l.Position, err)
			failed++
			continue
		}
		o := r.Replay(l)
		switch {
		case o.Err != nil:
			failed++
			fmt.Fprintf(stdout, "failed\t%s\t%v\n", l.Position, o.Err)
		case dryRun:
			fmt.Fprintf(stdout, "would send\t%s\t-> %s/%d\tkey=%q\theaders=%s%s\n", l.Position, o.Message.Topic, o.Partition,
				l.Record.Key, formatHeaders(o.Message.Headers), moved(o))
		default:
			sent++
			fmt.Fprintf(stdout, "sent\t%s\t-> %s/%d@%d\tkey=%q%s\n", l.Position, o.Message.Topic, o.Partition, o.Offset, l.Record.Key, moved(o))
		}
	}
	mode := ""
	if dryRun {
		mode = " (dry run)"
	}
	fmt.Fprintf(stdout, "replay%s: %d selected, %d sent, %d failed\n", mode, len(selected), sent, failed)
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errReplayFailed, failed, len(selected))
	}
	return nil
}

func moved(o deadletter.Outcome) string {
	if !o.Moved() {
		return ""
	}
	return fmt.Sprintf("\t(dead-lettered from partition %d: the topic's partition count changed)", o.Letter.Record.Partition)
}

func formatHeaders(hs []sarama.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = string(h.Key) + "=" + string(h.Value)
	}
	return strings.Join(parts, ",")
}

// undeclaredTargets returns the original topics of letters that topo does
// not declare, or declares without consumers (the dead-letter topic
// itself), sorted.
func undeclaredTargets(letters []deadletter.Letter, topo kafka.Topology) []string {
	consumed := map[string]bool{}
	for _, t := range topo.Topics {
		if len(t.Consumers) > 0 {
			consumed[t.Name] = true
		}
	}
	bad := map[string]bool{}
	for _, l := range letters {
		if t := l.Record.OriginalTopic; l.Err == nil && t != "" && !consumed[t] {
			bad[t] = true
		}
	}
	out := make([]string, 0, len(bad))
	for t := range bad {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
