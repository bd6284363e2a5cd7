package devbroker

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
	"time"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// fullStateOf returns the whole state a record carries, if any.
func fullStateOf(m *pb.DashStreamMessage) ([]byte, bool) {
	switch {
	case m.GetEvent().GetEventType() == pb.EventType_EVENT_TYPE_GRAPH_START:
		return []byte(m.GetEvent().GetAttributes()["initial_state_json"].GetStringValue()), true
	case len(m.GetStateDiff().GetFullState()) > 0:
		return m.GetStateDiff().GetFullState(), true
	case m.GetCheckpoint() != nil:
		return m.GetCheckpoint().GetState(), true
	}
	return nil, false
}

func canonical(t *testing.T, v any) []byte {
	t.Helper()
	c, err := CanonicalJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decodeState(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("state %q: %v", b, err)
	}
	return v
}

// runTrace follows one run from its GRAPH_START.
type runTrace struct {
	state      any    // reconstructed from GRAPH_START by applying every diff
	checkpoint []byte // id of the last Checkpoint seen
	lastFull   int    // record number of the last full-state record
	saving     bool   // a CHECKPOINT_SAVE was the run's last record
	gaps       []int  // records of the workload between consecutive full-state records
}

// TestWorkloadFullStateEvery: in a generated workload at the demo's
// defaults, every run carries its whole state at GRAPH_START and then at
// least every fullStateInterval (counted at the workload's rate): once a
// full state is due, the run's next record is one (or a node's
// CHECKPOINT_SAVE immediately followed by its Checkpoint). Every full state is the state
// reconstructed by applying the run's diffs: a Checkpoint's state is
// byte-for-byte the canonical JSON of the reconstruction and its checksum
// that state's SHA-256, and every diff names the last checkpoint before it.
func TestWorkloadFullStateEvery(t *testing.T) {
	cfg := WorkloadConfig{Seed: 7}.withDefaults()
	every := resyncEvery(cfg.Rate)
	if every != int64(fullStateInterval.Seconds()*defaultRate) {
		t.Fatalf("resyncEvery(%v) = %d", cfg.Rate, every)
	}
	recs := generate(t, cfg, 5000)
	runs := map[string]*runTrace{}
	periodic := 0
	for i, r := range recs {
		n := i + 1 // the workload's record number
		m := r.dec.Message
		tr := runs[r.key]
		if tr == nil {
			if m.GetEvent().GetEventType() != pb.EventType_EVENT_TYPE_GRAPH_START {
				t.Fatalf("record %d: thread %s starts with %s", n, r.key, r.dec.MessageType())
			}
			tr = &runTrace{}
			runs[r.key] = tr
		}
		full, isFull := fullStateOf(m)
		overdue := int64(n-tr.lastFull) >= every && tr.lastFull > 0
		switch {
		case tr.saving && m.GetCheckpoint() == nil:
			t.Fatalf("record %d: thread %s: CHECKPOINT_SAVE followed by %s", n, r.key, r.dec.MessageType())
		case overdue && !isFull && m.GetEvent().GetEventType() != pb.EventType_EVENT_TYPE_CHECKPOINT_SAVE:
			t.Fatalf("record %d: thread %s: %s while a full state is overdue (last at record %d)", n, r.key, r.dec.MessageType(), tr.lastFull)
		}
		// A node's CHECKPOINT_SAVE announces the Checkpoint that follows;
		// a periodic one confirms the Checkpoint just delivered.
		if ev := m.GetEvent(); ev.GetEventType() == pb.EventType_EVENT_TYPE_CHECKPOINT_SAVE {
			tr.saving = ev.GetAttributes()["checkpoint_id"].GetStringValue() != hex.EncodeToString(tr.checkpoint)
		} else {
			tr.saving = false
		}
		if d := m.GetStateDiff(); d != nil {
			if !bytes.Equal(d.GetBaseCheckpointId(), tr.checkpoint) {
				t.Fatalf("record %d: thread %s: diff based on %x, last checkpoint %x", n, r.key, d.GetBaseCheckpointId(), tr.checkpoint)
			}
			var err error
			if tr.state, err = applyDiff(tr.state, d); err != nil {
				t.Fatalf("record %d: thread %s: %v", n, r.key, err)
			}
			if sum := sha256.Sum256(canonical(t, tr.state)); !bytes.Equal(sum[:], d.GetStateHash()) {
				t.Fatalf("record %d: thread %s: state_hash differs from the reconstructed state", n, r.key)
			}
		}
		if cp := m.GetCheckpoint(); cp != nil {
			if got := canonical(t, tr.state); !bytes.Equal(cp.GetState(), got) {
				t.Fatalf("record %d: thread %s: checkpoint state\n%s\nreconstructed\n%s", n, r.key, cp.GetState(), got)
			}
			if sum := sha256.Sum256(cp.GetState()); !bytes.Equal(sum[:], cp.GetChecksum()) {
				t.Fatalf("record %d: thread %s: checkpoint checksum is not the state's SHA-256", n, r.key)
			}
			tr.checkpoint = cp.GetCheckpointId()
			if cp.GetMetadata()["trigger"] == "periodic" {
				periodic++
			}
		}
		if m.GetEvent().GetEventType() == pb.EventType_EVENT_TYPE_GRAPH_START {
			tr.state = decodeState(t, full)
		}
		if isFull {
			if tr.lastFull > 0 {
				tr.gaps = append(tr.gaps, n-tr.lastFull)
			}
			tr.lastFull = n
		}
	}
	var gaps []int
	for _, tr := range runs {
		gaps = append(gaps, tr.gaps...)
	}
	slices.Sort(gaps)
	secs := func(records int) time.Duration {
		return time.Duration(float64(records) / cfg.Rate * float64(time.Second)).Round(time.Millisecond)
	}
	p99, worst := gaps[len(gaps)*99/100], gaps[len(gaps)-1]
	t.Logf("%d runs, %d full-state gaps (%d periodic checkpoints): p50 %v, p99 %v, max %v at %v records/s",
		len(runs), len(gaps), periodic, secs(gaps[len(gaps)/2]), secs(p99), secs(worst), cfg.Rate)
	if periodic == 0 || len(runs) < 20 {
		t.Fatalf("%d periodic checkpoints over %d runs", periodic, len(runs))
	}
	// Past the interval the run's next record restores its state; with
	// four runs taking turns at random, the p99 wait for it is ~0.8 s. The
	// workload is seeded, so these numbers are exact for it.
	if secs(p99) > fullStateInterval+time.Second || secs(worst) > 2*fullStateInterval {
		t.Fatalf("gap between full states p99 %v, max %v; want <= %v, %v", secs(p99), secs(worst),
			fullStateInterval+time.Second, 2*fullStateInterval)
	}
}

// TestWorkloadJoinMidRunRecovers simulates a dashboard opened at many
// points of a running workload: for each run it sees, it knows nothing until
// the run's first full-state record, then applies diffs, checking every
// state_hash. Every run it joined mid-way recovers, at the latest with its
// first record after the interval (so within the interval plus the run's
// longest pause between two of its records).
func TestWorkloadJoinMidRunRecovers(t *testing.T) {
	cfg := WorkloadConfig{Seed: 11, Threads: 6}.withDefaults()
	recs := generate(t, cfg, 5000)
	every := int(resyncEvery(cfg.Rate))
	// idle is each run's longest pause: workload records between two of its
	// own while other runs took their turns.
	idle, last := map[string]int{}, map[string]int{}
	for i, r := range recs {
		if l, ok := last[r.key]; ok {
			idle[r.key] = max(idle[r.key], i-l)
		}
		last[r.key] = i
	}
	var waits []int
	for join := 500; join < len(recs)-4*every; join += 211 {
		known := map[string]any{} // state of the runs recovered
		first := map[string]int{} // each run's first record after join
		late := map[string]int{}  // its records more than every after first
		recovered := map[string]int{}
		for i := join; i < len(recs); i++ {
			r := recs[i]
			m := r.dec.Message
			if _, ok := first[r.key]; !ok {
				first[r.key] = i
			}
			if i-first[r.key] > every {
				late[r.key]++
			}
			state, ok := known[r.key]
			if full, isFull := fullStateOf(m); isFull {
				if !ok {
					recovered[r.key] = i
				}
				state, ok = decodeState(t, full), true
			}
			if d := m.GetStateDiff(); d != nil && ok {
				var err error
				if state, err = applyDiff(state, d); err != nil {
					t.Fatalf("join at %d: record %d: thread %s: %v", join, i, r.key, err)
				}
				if sum := sha256.Sum256(canonical(t, state)); !bytes.Equal(sum[:], d.GetStateHash()) {
					t.Fatalf("join at %d: record %d: thread %s: state_hash mismatch after recovery", join, i, r.key)
				}
			}
			if ok {
				known[r.key] = state
			}
		}
		for thread, f := range first {
			at, ok := recovered[thread]
			switch {
			case ok && at-f > every+idle[thread]:
				t.Fatalf("join at %d: thread %s recovered %d records after its first (interval %d, longest pause of the run %d)",
					join, thread, at-f, every, idle[thread])
			case ok:
				waits = append(waits, at-f)
			case late[thread] >= 1:
				t.Fatalf("join at %d: thread %s (first seen at %d) has %d records past the interval and never recovered",
					join, thread, f, late[thread])
			}
		}
	}
	slices.Sort(waits)
	secs := func(records int) time.Duration {
		return time.Duration(float64(records) / cfg.Rate * float64(time.Second)).Round(time.Millisecond)
	}
	p99 := waits[len(waits)*99/100]
	t.Logf("%d joined runs: recovered after p50 %v, p99 %v, max %v", len(waits),
		secs(waits[len(waits)/2]), secs(p99), secs(waits[len(waits)-1]))
	if secs(p99) > fullStateInterval+time.Second {
		t.Fatalf("p99 recovery %v, want <= %v", secs(p99), fullStateInterval+time.Second)
	}
}
