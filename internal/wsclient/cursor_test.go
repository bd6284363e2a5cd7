package wsclient

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// step is one event fed to a cursor: a record (offset >= 0 with no
// announcement) or an announced range.
type step struct {
	p        int32
	o        int64
	from, to int64 // announce from..to when to >= from and o < 0
	want     Verdict
}

func rec(p int32, o int64, want Verdict) step { return step{p: p, o: o, from: 0, to: -1, want: want} }
func ann(p int32, from, to int64) step        { return step{p: p, o: -1, from: from, to: to} }

func TestCursorApply(t *testing.T) {
	cases := []struct {
		name                        string
		start                       map[int32]int64
		steps                       []step
		last                        map[int32]int64
		dups, ooo, missing, announc int64
	}{
		{name: "contiguous", start: map[int32]int64{0: -1},
			steps: []step{rec(0, 0, Applied), rec(0, 1, Applied), rec(0, 2, Applied)},
			last:  map[int32]int64{0: 2}},
		{name: "first record of an unknown partition",
			steps: []step{rec(3, 41, Applied), rec(3, 42, Applied)},
			last:  map[int32]int64{3: 42}},
		{name: "duplicate", start: map[int32]int64{0: 5},
			steps: []step{rec(0, 5, Duplicate), rec(0, 3, Duplicate), rec(0, 6, Applied)},
			last:  map[int32]int64{0: 6}, dups: 2},
		{name: "unannounced hole then late fill", start: map[int32]int64{0: 0},
			steps: []step{rec(0, 4, AppliedAfterHole), rec(0, 2, Late), rec(0, 2, Duplicate), rec(0, 5, Applied)},
			last:  map[int32]int64{0: 5}, dups: 1, ooo: 1, missing: 2},
		{name: "gap contiguous with the cursor", start: map[int32]int64{0: 9},
			steps: []step{ann(0, 10, 19), rec(0, 20, Applied)},
			last:  map[int32]int64{0: 20}, announc: 10},
		{name: "skipped ahead of the cursor", start: map[int32]int64{0: 9},
			steps: []step{ann(0, 11, 11), rec(0, 10, Applied), rec(0, 12, Applied)},
			last:  map[int32]int64{0: 12}, announc: 1},
		{name: "announcement covers part of a jump", start: map[int32]int64{0: 0},
			steps: []step{ann(0, 3, 4), rec(0, 7, AppliedAfterHole)},
			last:  map[int32]int64{0: 7}, missing: 4, announc: 2},
		{name: "late gap for a hole", start: map[int32]int64{0: 0},
			steps: []step{rec(0, 5, AppliedAfterHole), ann(0, 1, 4)},
			last:  map[int32]int64{0: 5}, announc: 4},
		{name: "gap for an unknown partition",
			steps: []step{ann(2, 0, 9), rec(2, 10, Applied)},
			last:  map[int32]int64{2: 10}, announc: 10},
		{name: "partitions are independent", start: map[int32]int64{0: 1, 1: 1},
			steps: []step{rec(1, 2, Applied), rec(0, 2, Applied), rec(1, 2, Duplicate)},
			last:  map[int32]int64{0: 2, 1: 2}, dups: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCursor()
			for p, o := range tc.start {
				c.Set(p, o)
			}
			for i, s := range tc.steps {
				if s.o < 0 {
					c.Announce(s.p, s.from, s.to)
					continue
				}
				if v := c.Apply(Record{Partition: s.p, Offset: s.o}); v != s.want {
					t.Fatalf("step %d (p%d@%d): verdict %d, want %d", i, s.p, s.o, v, s.want)
				}
			}
			if !reflect.DeepEqual(c.Offsets(), tc.last) {
				t.Fatalf("offsets %v, want %v", c.Offsets(), tc.last)
			}
			got := [4]int64{c.Duplicates, c.OutOfOrder, c.Missing, c.Announced}
			if want := [4]int64{tc.dups, tc.ooo, tc.missing, tc.announc}; got != want {
				t.Fatalf("dups/ooo/missing/announced = %v, want %v", got, want)
			}
		})
	}
}

func ctl(t *testing.T, v map[string]any) Control {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return Control{Type: v["type"].(string), Raw: b}
}

func TestCursorApplyControl(t *testing.T) {
	c := NewCursor()
	c.Set(0, 10)
	c.Set(1, 50)
	steps := []map[string]any{
		{"type": "cursor_stale", "partition": 1, "requested": "50", "oldest": "0", "message": "m"},
		{"type": "gap", "partition": 0, "fromOffset": "11", "toOffset": "14", "count": 4},
		{"type": "skipped", "partition": 0, "offset": "15", "error_type": "bad_zstd"},
		{"type": "replay_complete", "totalReplayed": 0, "lastOffsetsByPartition": map[string]string{"0": "15", "2": "7"}, "capped": false, "mode": "cursor"},
		{"type": "pong"},
	}
	for _, s := range steps {
		if err := c.ApplyControl(ctl(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	if want := map[int32]int64{0: 15, 2: 7}; !reflect.DeepEqual(c.Offsets(), want) {
		t.Fatalf("offsets %v, want %v", c.Offsets(), want)
	}
	reset := map[string]any{"type": "cursor_reset_complete", "latestOffsetsByPartition": map[string]string{"3": "9"}}
	if err := c.ApplyControl(ctl(t, reset)); err != nil {
		t.Fatal(err)
	}
	if want := map[int32]int64{3: 9}; !reflect.DeepEqual(c.Offsets(), want) {
		t.Fatalf("after reset: offsets %v, want %v", c.Offsets(), want)
	}
	if err := c.ApplyControl(Control{Type: "gap", Raw: []byte(`{"fromOffset":"x"}`)}); err == nil {
		t.Fatal("malformed gap accepted")
	}
}

func TestCursorSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cursor.json")
	if _, err := LoadCursor(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	c := NewCursor()
	c.Namespace = "ns-1"
	c.Set(0, 41)
	c.Set(7, 9223372036854775806)
	for i := 0; i < 3; i++ { // overwrite in place
		if err := c.Save(path); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"namespace": "ns-1", "offsets": map[string]any{"0": "41", "7": "9223372036854775806"}}
	if !reflect.DeepEqual(raw, want) {
		t.Fatalf("file = %s", b)
	}
	got, err := LoadCursor(path)
	if err != nil || got.Namespace != "ns-1" || !reflect.DeepEqual(got.Offsets(), c.Offsets()) {
		t.Fatalf("loaded %+v %v, %v", got, got.Offsets(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestCursorSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cursor.json")
	c := NewCursor()
	c.Set(0, 1)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	// A save that cannot complete leaves the previous file intact.
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	c.Set(0, 2)
	if err := c.Save(path); err == nil && os.Geteuid() != 0 {
		t.Fatal("save into a read-only directory succeeded")
	}
	os.Chmod(dir, 0o700)
	got, err := LoadCursor(path)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := got.Last(0); o != 1 && o != 2 {
		t.Fatalf("cursor file corrupted: offset %d", o)
	}
}

func TestLoadCursorRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	for _, body := range []string{`not json`, `{"offsets":{"x":"1"}}`, `{"offsets":{"0":"-5"}}`, `{"offsets":{"0":"1e3"}}`} {
		os.WriteFile(path, []byte(body), 0o600)
		if _, err := LoadCursor(path); err == nil {
			t.Errorf("%s accepted", body)
		}
	}
}

func TestResumeJSON(t *testing.T) {
	cases := []struct {
		r    Resume
		want string
	}{
		{Resume{From: FromLatest}, `{"type":"resume","from":"latest","lastOffsetsByPartition":{}}`},
		{Resume{Offsets: map[int32]int64{0: 41}, Namespace: "n"}, `{"type":"resume","lastOffsetsByPartition":{"0":"41"},"namespace":"n"}`},
		{Resume{Threads: map[string]uint64{"t1": 18446744073709551615}, Mode: "thread"}, `{"type":"resume","lastSequencesByThread":{"t1":"18446744073709551615"},"mode":"thread"}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(&tc.r)
		if err != nil || string(b) != tc.want {
			t.Errorf("got %s (%v), want %s", b, err, tc.want)
		}
	}
}
