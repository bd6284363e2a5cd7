package devbroker

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// record is one generated record, decoded by the project's decoder.
type record struct {
	key   string
	value []byte
	dec   *dashstream.Decoded
}

// corpusConfig is the workload most tests inspect; corpus generates it
// once (generation is slow under the race detector).
var (
	corpusConfig = WorkloadConfig{Seed: 2, Tenant: "acme", Threads: 6}
	corpusOnce   sync.Once
	corpusRecs   []record
)

const corpusSize = 6000

func corpus(t *testing.T) []record {
	t.Helper()
	corpusOnce.Do(func() { corpusRecs = generate(t, corpusConfig, corpusSize) })
	if len(corpusRecs) != corpusSize {
		t.Fatal("corpus generation failed")
	}
	return corpusRecs
}

func generate(t *testing.T, cfg WorkloadConfig, n int) []record {
	t.Helper()
	w := NewWorkload(cfg)
	dec := dashstream.NewDecoder(dashstream.DecoderConfig{})
	out := make([]record, n)
	for i := range out {
		key, value, err := w.Next()
		if err != nil {
			t.Fatalf("record %d: Next: %v", i, err)
		}
		d, err := dec.Decode(value)
		if err != nil {
			t.Fatalf("record %d (thread %s): decode: %v", i, key, err)
		}
		out[i] = record{key, value, d}
	}
	return out
}

func TestWorkloadDeterministic(t *testing.T) {
	fixed := time.Unix(1_700_000_000, 0)
	next := func(seed int64) func() (string, []byte, error) {
		w := NewWorkload(WorkloadConfig{Seed: seed})
		w.now = func() time.Time { return fixed }
		return w.Next
	}
	a, b, other := next(42), next(42), next(43)
	differs := false
	for i := range 1500 {
		ka, va, err := a()
		if err != nil {
			t.Fatal(err)
		}
		kb, vb, _ := b()
		ko, vo, _ := other()
		if ka != kb || !bytes.Equal(va, vb) {
			t.Fatalf("record %d differs for the same seed: %s vs %s", i, ka, kb)
		}
		differs = differs || ka != ko || !bytes.Equal(va, vo)
	}
	if !differs {
		t.Fatal("seeds 42 and 43 produced the same records")
	}
}

func TestWorkloadFraming(t *testing.T) {
	var plain, compressed int
	for _, r := range corpus(t) {
		wantCompression := pb.Compression_COMPRESSION_NONE
		switch r.dec.Framing {
		case dashstream.FramingPlain:
			plain++
		case dashstream.FramingZstd:
			compressed++
			wantCompression = pb.Compression_COMPRESSION_ZSTD
			checkContentSize(t, r)
		default:
			t.Fatalf("thread %s: framing %v", r.key, r.dec.Framing)
		}
		for _, h := range headersOf(r.dec.Message) {
			if h.GetCompression() != wantCompression {
				t.Fatalf("thread %s seq %d: compression %v with %v framing", r.key, h.GetSequence(), h.GetCompression(), r.dec.Framing)
			}
		}
	}
	if plain == 0 || compressed == 0 {
		t.Fatalf("plain %d, zstd %d: want both", plain, compressed)
	}
}

// checkContentSize verifies the zstd frame declares the size of the protobuf
// it holds (the reference dashboard rejects frames that do not).
func checkContentSize(t *testing.T, r record) {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(r.value[1:]); err != nil {
		t.Fatalf("thread %s: zstd header: %v", r.key, err)
	}
	size := dashstreamSize(t, r.dec.Message)
	if !h.HasFCS || h.FrameContentSize != uint64(size) {
		t.Fatalf("thread %s: frame declares content size %v/%d, payload is %d", r.key, h.HasFCS, h.FrameContentSize, size)
	}
}

func TestWorkloadCompressAbove(t *testing.T) {
	tests := map[string]struct {
		above     int
		wantPlain bool
		wantZstd  bool
	}{
		"never":  {above: -1, wantPlain: true},
		"always": {above: 1, wantZstd: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, r := range generate(t, WorkloadConfig{Seed: 3, CompressAbove: tc.above}, 300) {
				isZstd := r.dec.Framing == dashstream.FramingZstd
				if (isZstd && !tc.wantZstd) || (!isZstd && !tc.wantPlain) {
					t.Fatalf("thread %s: unexpected framing %v", r.key, r.dec.Framing)
				}
				if isZstd {
					checkContentSize(t, r)
				}
			}
		})
	}
}

func TestWorkloadHeaders(t *testing.T) {
	next := map[string]uint64{}
	for _, r := range corpus(t) {
		hs := headersOf(r.dec.Message)
		if _, isBatch := r.dec.Message.GetMessage().(*pb.DashStreamMessage_EventBatch); isBatch {
			if len(hs) < 3 || len(hs) > 5 || hs[0].GetSequence() != 0 {
				t.Fatalf("thread %s: batch of %d events, envelope sequence %d", r.key, len(hs)-1, hs[0].GetSequence())
			}
		}
		for _, h := range hs {
			checkHeader(t, r.key, corpusConfig.Tenant, h)
		}
		for _, ref := range r.dec.Headers {
			if want := next[ref.ThreadID] + 1; ref.Sequence != want {
				t.Fatalf("thread %s: sequence %d, want %d", ref.ThreadID, ref.Sequence, want)
			}
			next[ref.ThreadID] = ref.Sequence
		}
	}
	if len(next) <= corpusConfig.Threads {
		t.Fatalf("only %d threads: runs never finished", len(next))
	}
}

func checkHeader(t *testing.T, key, tenant string, h *pb.Header) {
	t.Helper()
	switch {
	case len(h.GetMessageId()) != 16:
		t.Fatalf("thread %s: message_id of %d bytes", key, len(h.GetMessageId()))
	case h.GetThreadId() != key || h.GetTenantId() != tenant:
		t.Fatalf("key %s: header thread %q tenant %q", key, h.GetThreadId(), h.GetTenantId())
	case h.GetSchemaVersion() != 1 || h.GetTimestampUs() <= 0 || h.GetType() == pb.MessageType_MESSAGE_TYPE_UNSPECIFIED:
		t.Fatalf("thread %s: header %v", key, h)
	}
}

func TestWorkloadMessageIDsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range corpus(t) {
		for _, h := range headersOf(r.dec.Message) {
			id := string(h.GetMessageId())
			if seen[id] {
				t.Fatalf("duplicate message id %x", id)
			}
			seen[id] = true
		}
	}
}

func TestWorkloadDiffOperationsExplicit(t *testing.T) {
	ops := 0
	for _, r := range corpus(t) {
		for _, op := range r.dec.Message.GetStateDiff().GetOperations() {
			ops++
			if op.Op == nil || op.Encoding == nil {
				t.Fatalf("thread %s: operation %s without op or encoding", r.key, op.GetPath())
			}
		}
	}
	if ops == 0 {
		t.Fatal("no diff operations generated")
	}
}

func dashstreamSize(t *testing.T, m *pb.DashStreamMessage) int {
	t.Helper()
	b, err := dashstream.Encode(m, dashstream.FramingPlain)
	if err != nil {
		t.Fatal(err)
	}
	return len(b) - 1
}

// TestWorkloadStateHashes replays every run's diffs from its
// initial_state_json and checks each state_hash.
func TestWorkloadStateHashes(t *testing.T) {
	states := map[string]any{}
	checked, full := 0, 0
	for _, r := range corpus(t) {
		if ev := r.dec.Message.GetEvent(); ev.GetEventType() == pb.EventType_EVENT_TYPE_GRAPH_START {
			var initial any
			if err := json.Unmarshal([]byte(ev.GetAttributes()["initial_state_json"].GetStringValue()), &initial); err != nil {
				t.Fatalf("thread %s: initial_state_json: %v", r.key, err)
			}
			states[r.key] = initial
		}
		diff := r.dec.Message.GetStateDiff()
		if diff == nil {
			continue
		}
		state, ok := states[r.key]
		if !ok {
			t.Fatalf("thread %s: state diff before GRAPH_START", r.key)
		}
		state, err := applyDiff(state, diff)
		if err != nil {
			t.Fatalf("thread %s seq %d: %v", r.key, diff.GetHeader().GetSequence(), err)
		}
		canon, _ := CanonicalJSON(state)
		if sum := sha256.Sum256(canon); !bytes.Equal(sum[:], diff.GetStateHash()) {
			t.Fatalf("thread %s seq %d: state hash mismatch for %s", r.key, diff.GetHeader().GetSequence(), canon)
		}
		states[r.key] = state
		checked++
		if len(diff.GetFullState()) > 0 {
			full++
		}
	}
	if checked < 100 || full == 0 {
		t.Fatalf("checked %d diffs, %d full states", checked, full)
	}
}
func BenchmarkWorkloadNext(b *testing.B) {
	w := NewWorkload(WorkloadConfig{Seed: 1})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := w.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
