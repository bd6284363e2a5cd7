package hub

import (
	"strings"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// joins reports whether a resume from "latest" first joins every active
// thread at its last full state (docs/PROTOCOL.md §3.8): asked for with
// join "checkpoint", or, for v1, configured (WEBSOCKET_LATEST_JOIN).
func (d *delivery) joins(r *wsproto.Resume) bool {
	return r.From == wsproto.FromLatest && r.Mode != wsproto.ModeThread &&
		(r.Join == wsproto.JoinCheckpoint || (!d.v2 && d.h.cfg.LatestJoin == wsproto.JoinCheckpoint))
}

// joinCheckpoints makes the replay part of a "latest" resume start, per
// active thread the client's filter admits, at the thread's latest
// full-state record the memory tier holds (its run index): records of
// that thread from there up to the heads hs are replayed, nothing else is
// (wantsRecord), and live delivery follows from the heads. Active: a
// record within JoinWindow and no GRAPH_END or GRAPH_ERROR since its
// GRAPH_START. A thread without a full-state record in memory is not
// replayed. A thread whose newest full-state record is past the heads (it
// was published after the resume read them, e.g. while it waited for a
// replay slot) is not replayed, and its live records before that full
// state are not sent (joinLate): the first record of an active thread the
// client gets is a full state either way.
func (d *delivery) joinCheckpoints(hs *heads) {
	since := time.Now().Add(-d.h.cfg.JoinWindow).UnixMicro()
	join := map[string]replay.Ref{}
	add := func(run replay.Run) {
		ref := run.FullState
		if ref == nil || run.Status != replay.RunRunning || run.LastUs < since {
			return
		}
		head, ok := hs.offsets[ref.Partition]
		if !ok || ref.Offset > head {
			if d.joinLate == nil {
				d.joinLate = map[string]replay.Ref{}
			}
			d.joinLate[run.Thread] = *ref
			return
		}
		join[run.Thread] = *ref
		if o, ok := d.pos[ref.Partition]; !ok || ref.Offset-1 < o {
			d.pos[ref.Partition] = ref.Offset - 1
		}
	}
	scope := d.filter.ThreadScope()
	if scope.Exact != nil { // a few threads: one look-up each
		for _, t := range scope.Exact {
			if run, ok := d.h.source.RunOf(t); ok {
				add(run)
			}
		}
	} else {
		q := replay.RunQuery{Status: replay.RunRunning, SinceUs: since, Tenant: d.tenant, Restricted: d.tenant != "", Limit: 1000}
		for {
			runs, more := d.h.source.Runs(q)
			for _, run := range runs {
				if strings.HasPrefix(run.Thread, scope.Prefix) {
					add(run)
				}
			}
			if !more || len(runs) == 0 {
				break
			}
			q.After = runs[len(runs)-1].Thread
		}
	}
	d.rp.join = join
}

// wantsJoined applies a join's replay: only the joined threads' records
// from their full-state record on.
func (rp *replayRun) wantsJoined(r *replay.Record) bool {
	for _, t := range r.Threads {
		if ref, ok := rp.join[t.Thread]; ok && ref.Partition == r.Partition && r.Offset >= ref.Offset {
			return true
		}
	}
	return false
}

// joinsLater reports whether r is, for every thread it carries, a record
// before that thread's late full state (joinCheckpoints): one a joining
// client cannot apply yet.
func joinsLater(late map[string]replay.Ref, r *replay.Record) bool {
	for _, t := range r.Threads {
		if ref, ok := late[t.Thread]; !ok || ref.Partition != r.Partition || r.Offset >= ref.Offset {
			return false
		}
	}
	return len(r.Threads) > 0
}
