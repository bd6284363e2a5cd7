package hub

import "github.com/dashflow/dashstream-gateway/internal/replay"

// delivers reports whether record r of partition p goes to the client. A
// record it refuses is passed over: collect still advances the position
// over it, so it needs no gap frame and replay_complete reports the same
// positions as for anyone (docs/PROTOCOL.md §3.4).
func (d *delivery) delivers(p int32, r *replay.Record) bool {
	return d.visible(r) && d.wants(p, r)
}

// visible applies the tenant restriction of the client (auth.Identity):
// a tenant-restricted client gets only its tenant's records — no other
// tenant's, none without a tenant, no skipped markers (they would reveal
// other tenants' offsets).
func (d *delivery) visible(r *replay.Record) bool {
	return d.tenant == "" || (r.Skipped == "" && r.Tenant == d.tenant)
}

// wants tells whether r of p is delivered: a thread-mode replay, and after it
// was capped the records up to its targets, carry only the listed threads.
func (d *delivery) wants(p int32, r *replay.Record) bool {
	if d.rp != nil {
		return d.rp.wantsRecord(r)
	}
	if d.remainder != nil {
		if t, ok := d.remainder.targets[p]; ok && r.Offset <= t {
			return d.remainder.wantsRecord(r)
		}
	}
	return true
}

// wantsRecord applies the thread filter of a thread-mode replay.
func (rp *replayRun) wantsRecord(r *replay.Record) bool {
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
