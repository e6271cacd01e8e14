package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/migrations"
)

func runCode(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUnknownCommandAndUsage(t *testing.T) {
	if code, _, errOut := runCode("nonsense"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCode(); code != 2 || !strings.Contains(errOut, "serve") {
		t.Fatalf("no command: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCode("--help"); code != 0 || !strings.Contains(errOut, "worker, hub)") {
		t.Fatalf("--help: exit %d, %q", code, errOut)
	}
}

// Commands with sub-commands answer -h with their usage and exit 0, like
// every other command; a missing or unknown sub-command is a usage error.
func TestSubcommandHelp(t *testing.T) {
	for _, c := range []struct{ cmd, want string }{
		{"migrate", "migrate up|status"},
		{"topology", "topology apply|diff"},
		{"admin", "admin audit-verify"},
	} {
		for _, h := range []string{"-h", "--help", "help"} {
			if code, _, errOut := runCode(c.cmd, h); code != 0 || !strings.Contains(errOut, c.want) {
				t.Errorf("%s %s: exit %d, %q", c.cmd, h, code, errOut)
			}
		}
		if code, _, errOut := runCode(c.cmd); code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, %q", c.cmd, code, errOut)
		}
		if code, _, _ := runCode(c.cmd, "nonsense"); code != 2 {
			t.Errorf("%s nonsense: exit %d", c.cmd, code)
		}
	}
	for _, args := range [][]string{{"migrate", "up", "-h"}, {"topology", "diff", "-h"}, {"admin", "plans", "-h"}, {"admin", "audit-verify", "-h"}} {
		if code, _, errOut := runCode(args...); code != 0 || !strings.Contains(errOut, "-postgres") && !strings.Contains(errOut, "-kafka") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}

// Production roles check the schema and refuse an old one; the migrate
// command brings it up to date.
func TestServeRefusesAnOldSchemaUntilMigrated(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	for _, m := range all {
		versions = append(versions, m.Version)
	}
	every := fmt.Sprint(versions) // e.g. "[1 2]"
	if code, out, _ := runCode("migrate", "status", "-postgres", dsn); code == 0 || !strings.Contains(out, "pending "+every) {
		t.Fatalf("migrate status on an empty database: exit %d, %q; want non-zero and pending %s", code, out, every)
	}
	code, _, errOut := runCode("serve", "-roles", "node", "-postgres", dsn, "-http", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "schema is behind") {
		t.Fatalf("serve on an old schema: exit %d, %q; want refusal naming the schema", code, errOut)
	}
	if code, out, errOut := runCode("migrate", "up", "-postgres", dsn); code != 0 || !strings.Contains(out, "applied migrations "+every) {
		t.Fatalf("migrate up: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := runCode("migrate", "up", "-postgres", dsn); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate up: exit %d, %q", code, out)
	}
	if code, out, _ := runCode("migrate", "status", "-postgres", dsn); code != 0 || !strings.Contains(out, "pending []") {
		t.Fatalf("migrate status after up: exit %d, %q", code, out)
	}
}

// topology apply creates what is missing; diff exits 0 when the cluster
// matches and non-zero, naming the difference, when it drifts.
func TestTopologyApplyAndDiff(t *testing.T) {
	brokers := testenv.Kafka(t)
	domain := "t" + testenv.RandomSuffix()
	file := filepath.Join(t.TempDir(), "topology.yaml")
	yaml := fmt.Sprintf(`owned_prefixes: [%[1]s.]
topics:
  - {name: %[1]s.quote.events.v1, owner: quote, key: quote id, partitions: 3, replication: 1, retention: 24h, consumers: [%[1]s-intake]}
groups:
  - {name: %[1]s-intake, inputs: [%[1]s.quote.events.v1]}
`, domain)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	kcfg := kafka.Config{Brokers: brokers}.WithDefaults()
	admin, err := sarama.NewClusterAdmin(brokers, kcfg.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	t.Cleanup(func() {
		for _, topic := range []string{domain + ".quote.events.v1", domain + ".rogue.events.v1"} {
			_ = admin.DeleteTopic(topic)
		}
	})
	k := strings.Join(brokers, ",")

	if code, out, errOut := runCode("topology", "diff", "-kafka", k, "-file", file); code != 1 || !strings.Contains(out, domain+".quote.events.v1") {
		t.Fatalf("diff before apply: exit %d, %q %q; want 1 naming the missing topic", code, out, errOut)
	}
	if code, out, errOut := runCode("topology", "apply", "-kafka", k, "-file", file); code != 0 || !strings.Contains(out, "created "+domain+".quote.events.v1") {
		t.Fatalf("apply: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := runCode("topology", "diff", "-kafka", k, "-file", file); code != 0 || !strings.Contains(out, "no drift") {
		t.Fatalf("diff after apply: exit %d, %q %q", code, out, errOut)
	}
	if err := admin.CreateTopic(domain+".rogue.events.v1", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	// CreateTopic returns once the controller has the topic; the broker
	// that answers diff's metadata request may learn of it a moment later.
	waitForTopic(t, admin, domain+".rogue.events.v1")
	if code, out, _ := runCode("topology", "diff", "-kafka", k, "-file", file); code != 1 || !strings.Contains(out, domain+".rogue.events.v1") {
		t.Fatalf("diff with an undeclared topic: exit %d, %q; want 1 naming it", code, out)
	}
}

func TestServeRefusesIncompleteOrMalformedConfiguration(t *testing.T) {
	t.Setenv("GRAINLINE_CLUSTER_PORT", "abc")
	code, _, errOut := runCode("serve", "-roles", "gateway,worker")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{`GRAINLINE_CLUSTER_PORT="abc"`, "-postgres", "-kafka", "-nats-url", "-jwt-public-keys", "-cluster-peers"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal does not mention %s:\n%s", want, errOut)
		}
	}
	if code, _, errOut := runCode("serve", "-roles", "node,brain"); code != 1 || !strings.Contains(errOut, `unknown role "brain"`) {
		t.Fatalf("unknown role: exit %d, %q", code, errOut)
	}
}

// waitForTopic waits until admin lists topic.
func waitForTopic(t *testing.T, admin sarama.ClusterAdmin, topic string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		topics, err := admin.ListTopics()
		if err == nil {
			if _, ok := topics[topic]; ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not listed after 30s (last error: %v)", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serve refuses asynchronous simulated billing it cannot deliver: a worker
// needs the gateway's callback URL (unless it is the gateway) and the key
// that signs the callback tokens, which that gateway must trust.
func TestServeRefusesIncompleteAsyncBilling(t *testing.T) {
	base := []string{"serve", "-postgres", "postgres://unused", "-kafka", "127.0.0.1:1", "-nats-url", "nats://127.0.0.1:1"}
	refusal := func(args ...string) string {
		t.Helper()
		code, _, errOut := runCode(append(append([]string(nil), base...), args...)...)
		if code != 1 || !strings.Contains(errOut, "invalid configuration") {
			t.Fatalf("serve %v: exit %d, %q; want a refused configuration", args, code, errOut)
		}
		return errOut
	}
	mentions := func(errOut string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(errOut, w) {
				t.Errorf("refusal does not mention %q:\n%s", w, errOut)
			}
		}
	}
	// A worker alone: both missing.
	mentions(refusal("-roles", "worker", "-billing-async"), "-billing-callback-url (GRAINLINE_BILLING_CALLBACK_URL) is required", "-billing-callback-key (GRAINLINE_BILLING_CALLBACK_KEY) is required")
	// Malformed values.
	mentions(refusal("-roles", "worker", "-billing-async", "-billing-callback-url", "ftp://gw/v1/callbacks/billing",
		"-billing-callback-key", filepath.Join(t.TempDir(), "none.pem"), "-billing-callback-drop", "1.5", "-billing-callback-delay", "-1s"),
		"-billing-callback-url: \"ftp://gw/v1/callbacks/billing\" is not an absolute http or https URL", "-billing-callback-key: auth: signing key", "-billing-callback-drop", "-billing-callback-delay")
	// The environment names them too.
	t.Setenv("GRAINLINE_BILLING_CALLBACK_URL", "gw:8080")
	mentions(refusal("-roles", "worker", "-billing-async"), "-billing-callback-url: \"gw:8080\" is not an absolute", "-billing-callback-key (GRAINLINE_BILLING_CALLBACK_KEY) is required")
	t.Setenv("GRAINLINE_BILLING_CALLBACK_URL", "")

	keyDir := t.TempDir()
	pub := filepath.Join(keyDir, "signing.pub.pem")
	runCmd(t, "token", "-data-dir", keyDir, "-public-key-out", pub)
	key := filepath.Join(keyDir, "keys", "dev-signing-key.pem")
	// A key file others can read is refused.
	loose := filepath.Join(t.TempDir(), "loose.pem")
	raw, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mentions(refusal("-roles", "worker", "-billing-async", "-billing-callback-url", "http://gw:8080/v1/callbacks/billing", "-billing-callback-key", loose), "chmod 600")
	// With the gateway in the process, the URL defaults to it, and its
	// -jwt-billing-keys (or -jwt-public-keys) must trust the key.
	otherDir := t.TempDir()
	otherPub := filepath.Join(otherDir, "other.pub.pem")
	runCmd(t, "token", "-data-dir", otherDir, "-public-key-out", otherPub)
	errOut := refusal("-roles", "node,gateway,worker", "-billing-async", "-billing-callback-key", key, "-jwt-public-keys", otherPub)
	mentions(errOut, "the public key of -billing-callback-key is in neither -jwt-billing-keys nor -jwt-public-keys")
	if strings.Contains(errOut, "-billing-callback-url") {
		t.Errorf("the gateway's own URL was asked for:\n%s", errOut)
	}
	// Synchronous billing asks for neither.
	code, _, errOut := runCode("serve", "-roles", "worker")
	if code != 1 || strings.Contains(errOut, "billing") || !strings.Contains(errOut, "-kafka") {
		t.Fatalf("synchronous billing: exit %d, %q; want only the missing -kafka and -postgres", code, errOut)
	}
}
