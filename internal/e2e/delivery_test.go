package e2e

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// TestExactDeliveryFourPartitions: every record produced to 4 partitions of
// real Kafka reaches a client once, with cursors equal to the produced
// coordinates and the value byte for byte.
func TestExactDeliveryFourPartitions(t *testing.T) {
	k, topic := kafkaEnv(t, 4)
	g := startGateway(t, gatewayEnv(k, topic))
	c := g.dial(&wsclient.Resume{From: wsclient.FromLatest})
	readUntil(t, c, 10*time.Second, func(r *stream) bool { return r.hasControl("replay_complete") })
	want := map[int32][]int64{}
	values := map[[2]int64][]byte{}
	for p := int32(0); p < 4; p++ {
		offs, vals := produceEvents(t, k, topic, p, 0, 25)
		want[p] = offs
		for i, o := range offs {
			values[[2]int64{int64(p), o}] = vals[i]
		}
	}
	got := readN(t, c, 100, 30*time.Second)
	for p, offs := range offsetsOf(got.records()) {
		if !slices.Equal(offs, want[p]) {
			t.Errorf("partition %d: got offsets %v, want %v", p, offs, want[p])
		}
	}
	for _, r := range got.records() {
		if !bytes.Equal(r.Value, values[[2]int64{int64(r.Partition), r.Offset}]) {
			t.Fatalf("p%d@%d: value differs from what was produced", r.Partition, r.Offset)
		}
	}
}
