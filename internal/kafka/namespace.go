package kafka

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/twmb/franz-go/pkg/kadm"
)

// namespaceOf derives the resume namespace (docs/PROTOCOL.md §4) from what identifies the
// data, not from how it is reached: the cluster id, the topic name and the
// topic id when the broker reports one. Re-listing brokers keeps it; a
// re-created topic (new topic id) or another cluster changes it. It is the
// first 16 hex characters of SHA-256("<cluster id>/<topic>/<topic id>").
func namespaceOf(clusterID, topic string, id kadm.TopicID) string {
	topicID := ""
	if id != (kadm.TopicID{}) {
		topicID = id.String()
	}
	sum := sha256.Sum256([]byte(clusterID + "/" + topic + "/" + topicID))
	return hex.EncodeToString(sum[:8])
}
