package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/internal/testenv"
)

// namespaceCleanupTimeout bounds the removal of one test's topics and
// consumer groups from the shared broker.
const namespaceCleanupTimeout = time.Minute

// dropNamespaceOnCleanup deletes, when the test ends, every topic and
// consumer group on brokers whose name starts with prefix. Register it
// before the platform that uses the namespace, so that it runs after the
// platform is closed (cleanups run last-registered first). A namespace
// that cannot be removed fails the test: a leak on the shared broker is a
// defect, not noise.
func dropNamespaceOnCleanup(t *testing.T, brokers []string, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		if err := dropNamespace(brokers, prefix, namespaceCleanupTimeout); err != nil {
			t.Errorf("remove namespace %q from the shared broker: %v", prefix, err)
		}
	})
}

// errNoNamespace: an empty prefix would match every name on the broker.
var errNoNamespace = errors.New("e2e: empty namespace prefix")

// dropNamespace deletes every topic and consumer group on brokers whose name
// starts with prefix, and only those, and waits until the broker lists none
// of them. A group whose members have not yet left, and a deletion the
// broker has not finished, are retried until timeout passes.
func dropNamespace(brokers []string, prefix string, timeout time.Duration) error {
	if prefix == "" {
		return errNoNamespace
	}
	admin, err := sarama.NewClusterAdmin(brokers, kafka.Config{Brokers: brokers, ClientID: "e2e-cleanup"}.WithDefaults().Sarama())
	if err != nil {
		return fmt.Errorf("cluster admin: %w", err)
	}
	defer admin.Close()

	deadline := time.Now().Add(timeout)
	wait := 50 * time.Millisecond
	for {
		topics, groups, err := namespaced(admin, prefix)
		if err == nil && len(topics) == 0 && len(groups) == 0 {
			return nil
		}
		var errs []error
		if err != nil {
			errs = append(errs, err)
		}
		// Groups first: a group's committed offsets name its topics.
		for _, g := range groups {
			if err := admin.DeleteConsumerGroup(g); err != nil && !errors.Is(err, sarama.ErrGroupIDNotFound) {
				errs = append(errs, fmt.Errorf("delete consumer group %s: %w", g, err))
			}
		}
		for _, name := range topics {
			if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("delete topic %s: %w", name, err))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still listed after %v: topics %v, groups %v: %w", timeout, topics, groups, errors.Join(errs...))
		}
		time.Sleep(wait)
		wait = min(wait*2, time.Second)
	}
}

// namespaced lists the topics and consumer groups whose name starts with
// prefix, sorted.
func namespaced(admin sarama.ClusterAdmin, prefix string) (topics, groups []string, err error) {
	all, err := admin.ListTopics()
	if err != nil {
		return nil, nil, fmt.Errorf("list topics: %w", err)
	}
	for name := range all {
		if strings.HasPrefix(name, prefix) {
			topics = append(topics, name)
		}
	}
	gs, err := admin.ListConsumerGroups()
	if err != nil {
		return nil, nil, fmt.Errorf("list consumer groups: %w", err)
	}
	for g := range gs {
		if strings.HasPrefix(g, prefix) {
			groups = append(groups, g)
		}
	}
	slices.Sort(topics)
	slices.Sort(groups)
	return topics, groups, nil
}

// TestDropNamespace: the cleanup of a test's namespace removes its topics
// and its consumer groups, including a group with committed offsets, and
// leaves a neighbouring namespace alone, even one whose prefix differs only
// after the shared part.
func TestDropNamespace(t *testing.T) {
	brokers := testenv.Kafka(t)
	suffix := testenv.RandomSuffix()
	mine := "e2e-" + suffix + "-"
	neighbour := "e2e-" + suffix + "x-" // starts like mine without its trailing "-"
	if err := dropNamespace(brokers, "", time.Second); !errors.Is(err, errNoNamespace) {
		t.Fatalf("empty prefix: %v, want %v", err, errNoNamespace)
	}
	t.Cleanup(func() {
		if err := dropNamespace(brokers, neighbour, namespaceCleanupTimeout); err != nil {
			t.Errorf("remove neighbour namespace: %v", err)
		}
	})

	cfg := kafka.Config{Brokers: brokers, ClientID: "e2e"}.WithDefaults().Sarama()
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()

	topics := []string{mine + "a", mine + "b", neighbour + "a"}
	for _, name := range topics {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	// A group exists on the broker once it has committed an offset.
	groups := []string{mine + "g", neighbour + "g"}
	for _, g := range groups {
		commitOffset(t, client, g, strings.TrimSuffix(g, "g")+"a")
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		ts, gs, err := namespaced(admin, "e2e-"+suffix)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(ts, []string{mine + "a", mine + "b", neighbour + "a"}) && slices.Equal(gs, []string{mine + "g", neighbour + "g"}),
			fmt.Sprintf("broker lists topics %v groups %v", ts, gs)
	})

	if err := dropNamespace(brokers, mine, namespaceCleanupTimeout); err != nil {
		t.Fatalf("drop namespace: %v", err)
	}
	ts, gs, err := namespaced(admin, "e2e-"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ts, []string{neighbour + "a"}) || !slices.Equal(gs, []string{neighbour + "g"}) {
		t.Fatalf("after dropping %q the broker lists topics %v groups %v, want only the neighbour's", mine, ts, gs)
	}
}

// commitOffset makes group exist on the broker with a committed offset on
// partition 0 of topic.
func commitOffset(t *testing.T, c sarama.Client, group, topic string) {
	t.Helper()
	om, err := sarama.NewOffsetManagerFromClient(group, c)
	if err != nil {
		t.Fatalf("offset manager of %s: %v", group, err)
	}
	defer om.Close()
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		t.Fatalf("manage %s/0 for %s: %v", topic, group, err)
	}
	pom.MarkOffset(0, "")
	om.Commit()
	if err := pom.Close(); err != nil {
		t.Fatalf("commit %s/0 for %s: %v", topic, group, err)
	}
}
