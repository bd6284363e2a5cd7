package kafka

import (
	"context"
	"slices"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// TestRecordTenant: the consumer and the deep reader both stamp a record
// with the tenant of its header (one tenant per batch, else none), its
// message type and its event types (one per inner event of a batch); a
// skipped record has none of them.
func TestRecordTenant(t *testing.T) {
	hdr := func(tenant string) *pb.Header { return &pb.Header{TenantId: tenant, ThreadId: "th", Sequence: 1} }
	event := func(tenant string) *pb.DashStreamMessage {
		return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{Header: hdr(tenant)}}}
	}
	batch := func(inner ...string) *pb.DashStreamMessage {
		b := &pb.EventBatch{Header: hdr("")}
		for _, tn := range inner {
			b.Events = append(b.Events, &pb.Event{Header: hdr(tn)})
		}
		return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: b}}
	}
	msgs := []*pb.DashStreamMessage{event("acme"), event(""), batch("globex", "globex"), batch("acme", "globex")}
	want := []string{"acme", "", "globex", "", ""}
	wantType := []uint8{1, 1, 8, 8, 0}
	wantEvents := [][]int32{{0}, {0}, {0, 0}, {0, 0}, nil}
	var values [][]byte
	for _, m := range msgs {
		v, err := dashstream.Encode(m, dashstream.FramingPlain)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	values = append(values, []byte{0x7f, 1, 2}) // undecodable: skipped

	c, topic := fakeCluster(t, 1)
	brokers := c.ListenAddrs()
	produce(t, producer(t, brokers), topic, 0, values...)
	r := startConsumer(t, testConfig(brokers, topic))
	eventually(t, "every record", func() bool { return r.sink.count() == len(values) })
	for i, rec := range r.sink.records() {
		if rec.Tenant != want[i] {
			t.Errorf("consumer: offset %d tenant %q, want %q", rec.Offset, rec.Tenant, want[i])
		}
		checkFacts(t, "consumer", rec, wantType[i], wantEvents[i])
	}

	d, err := NewDeepReader(DeepReadConfig{Brokers: brokers, Topic: topic}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	page, err := d.Read(context.Background(), 0, -1, 100)
	if err != nil || len(page.Records) != len(values) {
		t.Fatalf("deep read: %d records (%v)", len(page.Records), err)
	}
	for i, rec := range page.Records {
		if rec.Tenant != want[i] {
			t.Errorf("deep read: offset %d tenant %q, want %q", rec.Offset, rec.Tenant, want[i])
		}
		checkFacts(t, "deep read", rec, wantType[i], wantEvents[i])
	}
}

func checkFacts(t *testing.T, who string, rec *replay.Record, typ uint8, events []int32) {
	t.Helper()
	if rec.Type != typ || !slices.Equal(rec.EventTypes, events) {
		t.Errorf("%s: offset %d type %d events %v, want %d %v", who, rec.Offset, rec.Type, rec.EventTypes, typ, events)
	}
}
