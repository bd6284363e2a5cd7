package wsclient

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testHub is a real hub with a memory replay tier behind httptest (see
// hubtest), without Kafka.
type testHub struct{ *hubtest.Server }

func newTestHub(t *testing.T, cfg hub.Config, mem replay.MemoryConfig) *testHub {
	t.Helper()
	return &testHub{hubtest.Start(t, cfg, mem)}
}

func (th *testHub) url() string { return th.URL }

// value is the payload publish puts at (p, o).
func value(p int32, o int64) string { return hubtest.Value(p, o) }

// publish hands n records of partition p, offsets from..from+n-1, to the hub.
func (th *testHub) publish(p int32, from int64, n int) { th.PublishN(p, from, n) }

// nexter is what both transports offer.
type nexter interface {
	Next(ctx context.Context) (Message, error)
	CloseNow() error
}

type transport struct {
	name string
	dial func(ctx context.Context, url string, opts Options) (nexter, error)
}

var transports = []transport{
	{"conn", func(ctx context.Context, url string, opts Options) (nexter, error) { return Dial(ctx, url, opts) }},
	{"lean", func(ctx context.Context, url string, opts Options) (nexter, error) { return DialLean(ctx, url, opts) }},
}

func dialT(t *testing.T, tr transport, url string, opts Options) nexter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", tr.name, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readUntil reads messages until stop accepts a control frame. Record values
// are copied (Lean's alias its buffer).
func readUntil(t *testing.T, c nexter, stop func(Control) bool) ([]Record, []Control) {
	t.Helper()
	var recs []Record
	var ctrl []Control
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		msg, err := c.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("next: %v (after %d records)", err, len(recs))
		}
		if msg.Kind == KindRecord {
			r := msg.Record
			r.Value = append([]byte(nil), r.Value...)
			recs = append(recs, r)
			continue
		}
		c := msg.Control
		c.Raw = append([]byte(nil), c.Raw...)
		ctrl = append(ctrl, c)
		if stop(c) {
			return recs, ctrl
		}
	}
}

func readRecords(t *testing.T, c nexter, n int) []Record {
	t.Helper()
	var recs []Record
	for len(recs) < n {
		r, _ := readUntilRecord(t, c)
		recs = append(recs, r)
	}
	return recs
}

func readUntilRecord(t *testing.T, c nexter) (Record, []Control) {
	t.Helper()
	var ctrl []Control
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		msg, err := c.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if msg.Kind == KindRecord {
			r := msg.Record
			r.Value = append([]byte(nil), r.Value...)
			return r, ctrl
		}
		ctrl = append(ctrl, msg.Control)
	}
}

func isType(typ string) func(Control) bool { return func(c Control) bool { return c.Type == typ } }

// checkRecords asserts partition p's records are exactly offsets from..to
// with the harness values.
func checkRecords(t *testing.T, recs []Record, p int32, from, to int64) {
	t.Helper()
	var got []int64
	for _, r := range recs {
		if r.Partition != p {
			continue
		}
		if string(r.Value) != value(r.Partition, r.Offset) {
			t.Fatalf("p%d@%d carries %q", r.Partition, r.Offset, r.Value)
		}
		got = append(got, r.Offset)
	}
	if int64(len(got)) != to-from+1 {
		t.Fatalf("partition %d: got %d records %v, want %d..%d", p, len(got), head(got), from, to)
	}
	for i, o := range got {
		if o != from+int64(i) {
			t.Fatalf("partition %d record %d: offset %d, want %d", p, i, o, from+int64(i))
		}
	}
}

func head(s []int64) []int64 {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
