package dashstream

import (
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

func TestDecodedTenant(t *testing.T) {
	hdr := func(tenant string) *pb.Header { return &pb.Header{TenantId: tenant, ThreadId: "t"} }
	event := func(h *pb.Header) *pb.DashStreamMessage {
		return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: &pb.Event{Header: h}}}
	}
	batch := func(envelope string, inner ...string) *pb.DashStreamMessage {
		b := &pb.EventBatch{Header: hdr(envelope)}
		for _, tn := range inner {
			b.Events = append(b.Events, &pb.Event{Header: hdr(tn)})
		}
		return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_EventBatch{EventBatch: b}}
	}
	cases := []struct {
		name string
		m    *pb.DashStreamMessage
		want string
	}{
		{"event", event(hdr("acme")), "acme"},
		{"event without tenant", event(hdr("")), ""},
		{"event without header", event(nil), ""},
		{"no body", &pb.DashStreamMessage{}, ""},
		{"state diff", &pb.DashStreamMessage{Message: &pb.DashStreamMessage_StateDiff{StateDiff: &pb.StateDiff{Header: hdr("acme")}}}, "acme"},
		{"batch agreeing", batch("acme", "acme", "acme"), "acme"},
		{"batch inherits envelope", batch("acme", "", "acme"), "acme"},
		{"batch without envelope tenant", batch("", "acme", "acme"), "acme"},
		{"batch empty", batch("acme"), "acme"},
		{"batch mixed", batch("", "acme", "globex"), ""},
		{"batch against envelope", batch("acme", "globex"), ""},
		{"batch partly untenanted", batch("", "acme", ""), ""},
		{"batch first untenanted", batch("", "", "acme"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := (&Decoded{Message: tc.m}).Tenant(); got != tc.want {
				t.Fatalf("Tenant() = %q, want %q", got, tc.want)
			}
		})
	}
}
