package kafka

import (
	"context"
	"testing"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// TestRecordTenant: the consumer and the deep reader both stamp a record
// with the tenant of its header (one tenant per batch, else none); a
// skipped record has none.
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
	}
}
