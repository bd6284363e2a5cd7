package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// TestTailFilterOnTheHub: against the real hub, --thread makes the gateway
// send only that thread's records (an EventBatch naming it among others
// included), over v1, v2 and v2 JSON.
func TestTailFilterOnTheHub(t *testing.T) {
	th := newTailHub(t, replay.MemoryConfig{})
	vs := tailVectors(t)
	var values [][]byte
	var want []string // offsets of the records naming tv-batch-b
	for i, v := range vs {
		values = append(values, v.value)
		for _, ts := range threadsOf(v.value) {
			if ts.Thread == "tv-batch-b" {
				want = append(want, itoa(i))
				break
			}
		}
	}
	if len(want) < 2 {
		t.Fatalf("vectors name tv-batch-b %d times", len(want))
	}
	th.publish(0, 0, values...)
	for _, mode := range [][]string{nil, {"--v2"}, {"--json"}} {
		args := append([]string{"--url", th.url, "--from", "earliest", "--thread", "tv-batch-b", "--max", itoa(len(want)), "--timeout", "10s"}, mode...)
		code, out, errOut := runTailForTest(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", mode, code, errOut)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var l struct {
				Offset  string          `json:"offset"`
				Message json.RawMessage `json:"message"`
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("%v: line %q: %v", mode, line, err)
			}
			got = append(got, l.Offset)
			if slices.Contains(mode, "--json") {
				if err := protojson.Unmarshal(l.Message, new(pb.DashStreamMessage)); err != nil {
					t.Fatalf("--json message %s: %v", l.Message, err)
				}
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%v: offsets %v, want %v", mode, got, want)
		}
		if strings.Contains(errOut, "hole:") {
			t.Fatalf("%v: a filtered stream reported holes:\n%s", mode, errOut)
		}
	}
}
