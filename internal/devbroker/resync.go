package devbroker

import (
	"time"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// fullStateInterval bounds the time between two full-state records of a
// run, as a DashFlow run's periodic checkpoints do: a consumer that joins a
// run mid-way (a dashboard opened on a running demo) has the run's whole
// state at the latest this long after its first record. Workload.Next paces
// nothing, so the interval is counted in records at WorkloadConfig.Rate,
// which is seconds when RunDemo produces them (and keeps the workload
// deterministic).
const fullStateInterval = 2 * time.Second

// resyncEvery is fullStateInterval in workload records at rate (at least 1).
func resyncEvery(rate float64) int64 {
	return max(int64(fullStateInterval.Seconds()*rate), 1)
}

// resyncDue reports whether the run's next record must be a full-state
// record: it has delivered GRAPH_START, at least every workload records have
// passed since its last full-state record, and the head of its queue is
// neither one nor the CHECKPOINT_SAVE announcing one.
func (r *run) resyncDue(at, every int64) bool {
	if r.delivered == nil || at-r.lastFull < every {
		return false
	}
	head := r.queue[0].msg
	return !isFullState(head) && head.GetEvent().GetEventType() != pb.EventType_EVENT_TYPE_CHECKPOINT_SAVE
}

// resync puts a checkpoint of the delivered state (not the queued one,
// which runs ahead) in front of the queue: the Checkpoint first, so that
// the run's very next record restores its state, then CHECKPOINT_SAVE.
// Diffs already queued are rebased on it up to the next queued checkpoint,
// so every diff names the last checkpoint before it.
func (r *run) resync(rng source) {
	id := rng.uuid()
	save, cp := r.checkpointMsgs(id, r.delivered, map[string]string{"graph": r.g.Name, "trigger": "periodic"})
	r.queue = append([]queued{{msg: cp, state: r.delivered}, {msg: save}}, r.queue...)
	for _, q := range r.queue[2:] {
		if q.msg.GetCheckpoint() != nil {
			return
		}
		if d := q.msg.GetStateDiff(); d != nil {
			d.BaseCheckpointId = id
		}
	}
	r.checkpoint = id
}

// isFullState reports whether m carries a run's whole state: GRAPH_START
// (initial_state_json), a StateDiff with full_state, or a Checkpoint.
func isFullState(m *pb.DashStreamMessage) bool {
	return m.GetEvent().GetEventType() == pb.EventType_EVENT_TYPE_GRAPH_START ||
		len(m.GetStateDiff().GetFullState()) > 0 || m.GetCheckpoint() != nil
}
