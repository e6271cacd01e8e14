package platform

import "github.com/grainline/grainline/connectors/kafka"

// NamespacedTopic is the name a platform with Config.TopicPrefix prefix
// gives topic name: name itself without a prefix, otherwise prefix+name,
// with platform topics ("grainline.x.v1") under a "platform" domain.
func NamespacedTopic(prefix, name string) string { return namespaced(prefix, name) }

// NamespacedGroup is the name a platform with Config.TopicPrefix prefix
// gives consumer group name.
func NamespacedGroup(prefix, name string) string { return prefix + name }

// NamespacedTopology is t as a platform with Config.TopicPrefix prefix
// provisions it (t itself without a prefix).
func NamespacedTopology(t kafka.Topology, prefix string) kafka.Topology {
	if prefix == "" {
		return t
	}
	return withNamespace(t, prefix)
}
