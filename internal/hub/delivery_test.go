package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/metrics"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// The delivery is driven here without any socket: records go in through
// Hub.Publish into a fake Source, frames come out of resume and next.

// fakeSource is a replay source whose contents and failures the test
// controls: a per-partition log whose records below logStart are gone (a
// log start "Kafka" reported, the only proof of a gap), and an error every
// look-up fails with. A fake rather than replay.Tiers because the tiers'
// planning is tested in package replay; here only what the delivery does
// with their answers matters.
type fakeSource struct {
	mu       sync.Mutex
	log      map[int32][]*replay.Record
	logStart map[int32]int64
	fail     error
}

func newFakeSource() *fakeSource {
	return &fakeSource{log: map[int32][]*replay.Record{}, logStart: map[int32]int64{}}
}

func (f *fakeSource) Append(recs []*replay.Record) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range recs {
		f.log[r.Partition] = append(f.log[r.Partition], r)
	}
	return len(recs)
}

// retained is p's log from its log start.
func (f *fakeSource) retained(p int32) []*replay.Record {
	var out []*replay.Record
	for _, r := range f.log[p] {
		if r.Offset >= f.logStart[p] {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeSource) Page(ctx context.Context, p int32, after int64, lim replay.Limit, _ []*replay.Record) (replay.Page, error) {
	if err := ctx.Err(); err != nil {
		return replay.Page{}, fmt.Errorf("fake page: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return replay.Page{}, fmt.Errorf("fake page: %w", f.fail)
	}
	var page replay.Page
	if ls, ok := f.logStart[p]; ok && after+1 < ls {
		page.Gap = &replay.Gap{From: after + 1, To: ls - 1}
	}
	bytes := 0
	for _, r := range f.retained(p) {
		if r.Offset <= after {
			continue
		}
		if len(page.Records) >= lim.Records || (len(page.Records) > 0 && bytes+len(r.Frame) > lim.Bytes) {
			break
		}
		page.Records = append(page.Records, r)
		bytes += len(r.Frame)
	}
	if len(page.Records) > 0 {
		page.Tier = replay.TierRedis // not memory: the delivery must not reuse the slice
	}
	return page, nil
}

func (f *fakeSource) WindowStart(_ context.Context, p int32) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.retained(p); len(r) > 0 {
		return r[0].Offset, true
	}
	return 0, false
}

func (f *fakeSource) ProveStale(_ context.Context, p int32, after int64) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, false, fmt.Errorf("fake stale: %w", f.fail)
	}
	oldest := f.logStart[p]
	return oldest, after+1 < oldest, nil
}

func (f *fakeSource) Backlog(p int32, after int64) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, r := range f.log[p] {
		if r.Offset > after {
			n += int64(len(r.Frame))
		}
	}
	return n, false
}

// ReadThreads: the fake has no thread index (the delivery reads Page and
// filters).
func (f *fakeSource) ReadThreads(_ int32, after int64, _ []string, _ replay.Limit, buf []*replay.Record) ([]*replay.Record, int64, bool) {
	return buf[:0], after, false
}

// ReadTypes: nor a type index.
func (f *fakeSource) ReadTypes(_ int32, after int64, _ replay.TypeQuery, _ replay.Limit, buf []*replay.Record) ([]*replay.Record, int64, bool) {
	return buf[:0], after, false
}

// Runs and Run: the fake keeps no run index (nothing to join).
func (f *fakeSource) Runs(replay.RunQuery) ([]replay.Run, bool) { return nil, false }
func (f *fakeSource) RunOf(string) (replay.Run, bool)           { return replay.Run{}, false }

func (f *fakeSource) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// deliveryRig is a hub over a fakeSource and the records published to it.
type deliveryRig struct {
	t    *testing.T
	h    *Hub
	src  *fakeSource
	recs map[*byte]*replay.Record // by the first byte of their Frame
	prev map[int32]int64
}

func newDeliveryRig(t *testing.T, cfg Config) *deliveryRig {
	t.Helper()
	src := newFakeSource()
	h := New(cfg, src, &fakeTopo{hwm: map[int32]int64{}}, metrics.New(nil), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	return &deliveryRig{t: t, h: h, src: src, recs: map[*byte]*replay.Record{}, prev: map[int32]int64{}}
}

// publish hands p's records from..from+n-1 to the hub, of tenant.
func (rg *deliveryRig) publish(p int32, from int64, n int, tenant string) {
	recs := make([]*replay.Record, n)
	for i := range recs {
		o := from + int64(i)
		prev, ok := rg.prev[p]
		if !ok {
			prev = o - 1
		}
		recs[i] = &replay.Record{Partition: p, Offset: o, Prev: prev, Tenant: tenant,
			Value: []byte(fmt.Sprintf("v-%d-%d", p, o))}
		rg.prev[p] = o
	}
	rg.h.Publish(recs)
	for _, r := range recs {
		rg.recs[&r.Frame[0]] = r
	}
}

// out is what a delivery produced, decoded: records (partition, offset)
// and control frames (JSON).
type out struct {
	recs     map[int32][]int64
	controls []map[string]any
}

func (o *out) types() []string {
	var ts []string
	for _, c := range o.controls {
		ts = append(ts, c["type"].(string))
	}
	return ts
}

func (o *out) control(typ string) map[string]any {
	for _, c := range o.controls {
		if c["type"] == typ {
			return c
		}
	}
	return nil
}

// decode sorts frames into records (identified as the published frames
// themselves: a delivery shares them, never copies) and control frames.
func (rg *deliveryRig) decode(frames [][]byte, into *out) {
	rg.t.Helper()
	if into.recs == nil {
		into.recs = map[int32][]int64{}
	}
	for _, f := range frames {
		if r, ok := rg.recs[&f[0]]; ok && len(f) == len(r.Frame) {
			into.recs[r.Partition] = append(into.recs[r.Partition], r.Offset)
			continue
		}
		br := bytes.NewReader(f)
		hdr, err := ws.ReadHeader(br)
		if err != nil || hdr.OpCode != ws.OpText || hdr.Length != int64(br.Len()) {
			rg.t.Fatalf("frame %q is neither a record nor one text frame (%v)", f, err)
		}
		var m map[string]any
		if err := json.Unmarshal(f[len(f)-br.Len():], &m); err != nil {
			rg.t.Fatalf("control frame %q: %v", f, err)
		}
		into.controls = append(into.controls, m)
	}
}

// drain calls next until it delivers nothing more (at most 1,000 times).
func (rg *deliveryRig) drain(ctx context.Context, d *delivery, into *out) *closeReason {
	rg.t.Helper()
	for range 1000 {
		frames, advanced, cr := d.next(ctx, nil)
		if cr != nil {
			rg.decode(cr.frames, into)
			return cr
		}
		rg.decode(frames, into)
		if !advanced && len(frames) == 0 {
			return nil
		}
	}
	rg.t.Fatal("the delivery never ran dry")
	return nil
}

func (rg *deliveryRig) resume(ctx context.Context, d *delivery, r *wsproto.Resume, into *out) {
	rg.t.Helper()
	frames, cr := d.resume(ctx, r)
	if cr != nil {
		rg.t.Fatalf("resume ended the stream: %d %s", cr.code, cr.reason)
	}
	rg.decode(frames, into)
}

func cursorResume(offsets map[int32]int64) *wsproto.Resume {
	return &wsproto.Resume{From: wsproto.FromCursor, Mode: wsproto.ModePartition, Offsets: offsets}
}

// TestDeliveryReplayThenLive: a resume replays what lies between the cursor
// (or, for an unlisted partition, the window start) and the heads seen at
// the resume, then replay_complete with those positions, then live records
// from the same positions: each record once, none skipped.
func TestDeliveryReplayThenLive(t *testing.T) {
	rg := newDeliveryRig(t, Config{})
	rg.publish(0, 0, 10, "")
	rg.publish(1, 0, 5, "")
	ctx := t.Context()
	d := rg.h.newDelivery("", false, nil)
	var o out
	rg.resume(ctx, d, cursorResume(map[int32]int64{0: 3}), &o)
	if cr := rg.drain(ctx, d, &o); cr != nil {
		t.Fatalf("ended: %+v", cr)
	}
	want := map[int32][]int64{0: seq(4, 9), 1: seq(0, 4)}
	if !mapsEqual(o.recs, want) {
		t.Fatalf("replayed %v, want %v", o.recs, want)
	}
	if got := o.types(); !slices.Equal(got, []string{"replay_complete"}) {
		t.Fatalf("control frames %v", got)
	}
	rc := o.control("replay_complete")
	if last := rc["lastOffsetsByPartition"].(map[string]any); last["0"] != "9" || last["1"] != "4" || rc["totalReplayed"] != 11.0 {
		t.Fatalf("replay_complete %v", rc)
	}

	rg.publish(0, 10, 3, "")
	var live out
	if cr := rg.drain(ctx, d, &live); cr != nil {
		t.Fatalf("ended: %+v", cr)
	}
	if want := map[int32][]int64{0: seq(10, 12)}; !mapsEqual(live.recs, want) || len(live.controls) != 0 {
		t.Fatalf("live %v %v, want %v only", live.recs, live.types(), want)
	}
}

// TestDeliveryCappedRemainderIsOwed: a replay capped by REPLAY_MAX_TOTAL
// reports capped, and its remainder (up to the heads seen at the resume)
// follows without a new resume and without counting as slow-client
// catch-up, however small the client's queue bound.
func TestDeliveryCappedRemainderIsOwed(t *testing.T) {
	rg := newDeliveryRig(t, Config{ReplayMaxTotal: 5, QueueBytes: 1, WriteBatch: 64, SlowThreshold: 1})
	rg.publish(0, 0, 40, "")
	ctx := t.Context()
	d := rg.h.newDelivery("", false, nil)
	var o out
	rg.resume(ctx, d, &wsproto.Resume{From: wsproto.FromEarliest, Mode: wsproto.ModePartition}, &o)
	for d.rp != nil {
		frames, _, cr := d.next(ctx, nil)
		if cr != nil {
			t.Fatalf("ended: %+v", cr)
		}
		rg.decode(frames, &o)
	}
	if rc := o.control("replay_complete"); rc == nil || rc["capped"] != true || rc["totalReplayed"] != 5.0 {
		t.Fatalf("replay_complete %v", rc)
	}
	if d.remainder == nil {
		t.Fatal("a capped replay left no remainder")
	}
	for d.remainder != nil {
		frames, _, cr := d.next(ctx, nil)
		if cr != nil {
			t.Fatalf("the remainder ended the stream: %d %s", cr.code, cr.reason)
		}
		if d.lag.catching {
			t.Fatal("the owed remainder counts as catch-up")
		}
		if cr := d.tooSlow(); cr != nil {
			t.Fatalf("disconnected as slow while owed: %s", cr.reason)
		}
		rg.decode(frames, &o)
	}
	if want := map[int32][]int64{0: seq(0, 39)}; !mapsEqual(o.recs, want) {
		t.Fatalf("delivered %v, want %v", o.recs, want)
	}
}

// TestDeliveryCatchupAndSlowDisconnect: a live client whose backlog
// exceeds its queue bound is catching up; beyond the threshold of records
// in the window it is told disconnect (backpressure) with 1008.
func TestDeliveryCatchupAndSlowDisconnect(t *testing.T) {
	rg := newDeliveryRig(t, Config{QueueBytes: 1, WriteBatch: 64, SlowThreshold: 3})
	ctx := t.Context()
	d := rg.h.newDelivery("", false, nil)
	var o out
	rg.resume(ctx, d, &wsproto.Resume{From: wsproto.FromLatest, Mode: wsproto.ModePartition}, &o)
	rg.drain(ctx, d, &o) // replay_complete of an empty replay
	rg.publish(0, 0, 50, "")
	var cr *closeReason
	for i := 0; cr == nil && i < 100; i++ {
		if _, _, cr = d.next(ctx, nil); cr == nil {
			cr = d.tooSlow()
		}
	}
	if cr == nil || cr.code != ws.StatusPolicyViolation || cr.reason != "backpressure" {
		t.Fatalf("end %+v, want backpressure 1008", cr)
	}
	var end out
	rg.decode(cr.frames, &end)
	if dc := end.control("disconnect"); dc == nil || dc["reason"] != "backpressure" || dc["threshold"] != 3.0 {
		t.Fatalf("disconnect frame %v", end.controls)
	}
}

// TestDeliveryGapOnlyOnProof: what the source proves gone (a log start
// Kafka reported) is one gap frame and the positions jump it; a cursor
// older than it is cursor_stale plus gap at the resume; a source that can
// neither serve nor prove ends the stream with REPLAY_UNAVAILABLE and 1013,
// with no gap.
func TestDeliveryGapOnlyOnProof(t *testing.T) {
	rg := newDeliveryRig(t, Config{})
	rg.publish(0, 0, 20, "")
	rg.src.logStart[0] = 8
	ctx := t.Context()

	d := rg.h.newDelivery("", false, nil)
	var o out
	rg.resume(ctx, d, cursorResume(map[int32]int64{0: 2}), &o)
	rg.drain(ctx, d, &o)
	if got := o.types(); !slices.Equal(got, []string{"cursor_stale", "gap", "replay_complete"}) {
		t.Fatalf("control frames %v", got)
	}
	if g := o.control("gap"); g["fromOffset"] != "3" || g["toOffset"] != "7" {
		t.Fatalf("gap %v, want 3..7", g)
	}
	if want := map[int32][]int64{0: seq(8, 19)}; !mapsEqual(o.recs, want) {
		t.Fatalf("delivered %v, want %v", o.recs, want)
	}

	rg.src.setFail(replay.ErrUnavailable)
	d = rg.h.newDelivery("", false, nil)
	frames, cr := d.resume(ctx, cursorResume(map[int32]int64{0: 2}))
	if cr == nil || cr.code != statusTryAgainLater || len(frames) != 0 {
		t.Fatalf("resume with the source down: %+v", cr)
	}
	var end out
	rg.decode(cr.frames, &end)
	if e := end.control("error"); e == nil || e["code"] != wsproto.CodeReplayUnavailable || end.control("gap") != nil {
		t.Fatalf("frames %v, want REPLAY_UNAVAILABLE and no gap", end.controls)
	}
}

// TestDeliveryTenantPassesOver: a tenant-restricted delivery gets only its
// tenant's records, yet its positions (and replay_complete) move over the
// others exactly as an unrestricted one's: no gap for what it may not see.
func TestDeliveryTenantPassesOver(t *testing.T) {
	rg := newDeliveryRig(t, Config{})
	rg.publish(0, 0, 4, "a")
	rg.publish(0, 4, 4, "b")
	ctx := t.Context()
	d := rg.h.newDelivery("a", false, nil)
	var o out
	rg.resume(ctx, d, &wsproto.Resume{From: wsproto.FromEarliest, Mode: wsproto.ModePartition}, &o)
	rg.drain(ctx, d, &o)
	if want := map[int32][]int64{0: {0, 1, 2, 3}}; !mapsEqual(o.recs, want) {
		t.Fatalf("replayed %v, want %v", o.recs, want)
	}
	if rc := o.control("replay_complete"); rc["lastOffsetsByPartition"].(map[string]any)["0"] != "7" || rc["totalReplayed"] != 4.0 {
		t.Fatalf("replay_complete %v, want the position 7 anyone gets", rc)
	}
	if got := o.types(); !slices.Equal(got, []string{"replay_complete"}) {
		t.Fatalf("control frames %v (no gap for other tenants' records)", got)
	}
	rg.publish(0, 8, 2, "a")
	rg.publish(0, 10, 1, "b")
	var live out
	rg.drain(ctx, d, &live)
	if want := map[int32][]int64{0: {8, 9}}; !mapsEqual(live.recs, want) || len(live.controls) != 0 || d.pos[0] != 10 {
		t.Fatalf("live %v %v at %d, want %v at 10", live.recs, live.types(), d.pos[0], want)
	}
}

// TestDeliveryStopsWithItsContext: a look-up cut short because the stream's
// context ended is that end — 1001 when the hub shuts down, the client
// gone otherwise — not REPLAY_UNAVAILABLE.
func TestDeliveryStopsWithItsContext(t *testing.T) {
	for name, tc := range map[string]struct {
		cause error
		want  *closeReason
	}{
		"shutdown":    {ErrClosing, goingAway},
		"client gone": {errPeerGone, peerGone},
	} {
		t.Run(name, func(t *testing.T) {
			rg := newDeliveryRig(t, Config{})
			rg.publish(0, 0, 5, "")
			ctx, cancel := context.WithCancelCause(t.Context())
			d := rg.h.newDelivery("", false, nil)
			var o out
			rg.resume(ctx, d, &wsproto.Resume{From: wsproto.FromEarliest, Mode: wsproto.ModePartition}, &o)
			cancel(tc.cause)
			_, _, cr := d.next(ctx, nil)
			if cr != tc.want {
				t.Fatalf("end %+v, want %+v", cr, tc.want)
			}
			d.stop()
			if len(rg.h.replaySlots) != 0 {
				t.Fatal("the replay slot was not released")
			}
		})
	}
}

// TestDeliveryResetContinuesFromHeads: cursor_reset ends a running replay
// with its replay_complete and continues from the heads.
func TestDeliveryResetContinuesFromHeads(t *testing.T) {
	rg := newDeliveryRig(t, Config{})
	rg.publish(0, 0, 5, "")
	ctx := t.Context()
	d := rg.h.newDelivery("", false, nil)
	var o out
	rg.resume(ctx, d, &wsproto.Resume{From: wsproto.FromEarliest, Mode: wsproto.ModePartition}, &o)
	rg.decode(d.reset(), &o)
	if got := o.types(); !slices.Equal(got, []string{"replay_complete", "cursor_reset_complete"}) {
		t.Fatalf("control frames %v", got)
	}
	rg.publish(0, 5, 2, "")
	var live out
	rg.drain(ctx, d, &live)
	if want := map[int32][]int64{0: {5, 6}}; !mapsEqual(live.recs, want) {
		t.Fatalf("after the reset %v, want %v", live.recs, want)
	}
}

func mapsEqual(a, b map[int32][]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
