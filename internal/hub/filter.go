package hub

import (
	"github.com/dashflow/dashstream-gateway/internal/filter"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// delivers reports whether record r of partition p goes to the client. A
// record it refuses is passed over: the position still advances over it,
// so it needs no gap frame and replay_complete reports the same positions
// as for anyone (docs/PROTOCOL.md §3.4, §3.8).
func (d *delivery) delivers(p int32, r *replay.Record) bool {
	return (d.all || d.filter.MatchRecord(r)) && d.wants(p, r)
}

// setFilter makes spec (a resume's "filter", nil when absent) the filter
// of the epoch that starts, narrowed by the client's tenant, which nothing
// the client sends can widen: a tenant-restricted client gets only its
// tenant's records — no other tenant's, none without a tenant, no skipped
// markers (they would reveal other tenants' offsets). A filter that does
// not parse or exceeds its limits returns the error frame to send; the
// resume is then refused and nothing changes.
func (d *delivery) setFilter(spec []byte) *wsproto.Error {
	f, ferr := filter.Parse(spec)
	if ferr != nil {
		e := wsproto.NewError(ferr.Code, ferr.Message)
		return &e
	}
	d.filter = f.WithTenant(d.tenant)
	d.all = d.filter.AdmitsAll()
	d.threads, d.types, d.path = nil, replay.TypeQuery{}, pathScan
	if !d.h.cfg.ScanFilters {
		if scope := d.filter.ThreadScope(); scope.Exact != nil {
			d.threads, d.path = scope.Exact, pathIndex
		} else if q := d.filter.TypeScope(); q.Types != 0 || len(q.Events) > 0 {
			d.types, d.path = q, pathTypeIndex
		}
	}
	d.h.m.Subscriptions.WithLabelValues(f.Kind()).Inc()
	if d.sub != nil {
		d.h.subscribe(d.sub, wakeKey{threads: d.threads, types: d.types})
	}
	return nil
}

// Delivery paths of a filtered client, for the matched/scanned metrics.
const (
	pathIndex     = "index"      // the memory tier's thread index: only the threads' records are read
	pathTypeIndex = "type_index" // its type index: only the records of the types or event types are read
	pathScan      = "scan"       // every record of the range is read and matched
)

// countFiltered adds what one batch examined and matched to the metrics of
// the client's path (only for a filtered client).
func (d *delivery) countFiltered(b *batch) {
	if d.all || b.scanned == 0 {
		return
	}
	d.h.m.FilterRecordsScanned.WithLabelValues(d.path).Add(float64(b.scanned))
	d.h.m.FilterRecordsMatched.WithLabelValues(d.path).Add(float64(b.matched))
}

// wants tells whether r of p is delivered: a thread-mode replay, and after it
// was capped the records up to its targets, carry only the listed threads;
// after a join, a late-joined thread's records before its full state are
// not delivered.
func (d *delivery) wants(p int32, r *replay.Record) bool {
	if d.rp != nil {
		return d.rp.wantsRecord(r)
	}
	if d.remainder != nil {
		if t, ok := d.remainder.targets[p]; ok && r.Offset <= t {
			return d.remainder.wantsRecord(r)
		}
	}
	return d.joinLate == nil || !joinsLater(d.joinLate, r)
}

// wantsRecord applies the thread filter of a thread-mode replay and the
// threads of a join.
func (rp *replayRun) wantsRecord(r *replay.Record) bool {
	if rp != nil && rp.join != nil {
		return rp.wantsJoined(r)
	}
	if rp == nil || rp.threads == nil {
		return true
	}
	for _, t := range r.Threads {
		if last, ok := rp.threads[t.Thread]; ok && t.Sequence > last {
			return true
		}
	}
	return false
}
