package client_test

import (
	"context"
	"fmt"
	"time"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/pkg/client"
)

// Follow one run: the gateway sends only the records of thread "run-2",
// here as JSON over protocol v2.
func ExampleFilter() {
	gw := hubtest.New(hub.Config{}, replay.MemoryConfig{}, nil) // a gateway in this process, for the example
	defer gw.Close()
	event := func(thread string, seq uint64, typ pb.EventType) *pb.DashStreamMessage {
		return &pb.DashStreamMessage{Message: &pb.DashStreamMessage_Event{Event: ev(thread, seq, typ)}}
	}
	recs, err := records(
		event("run-1", 1, pb.EventType_EVENT_TYPE_GRAPH_START),
		event("run-2", 1, pb.EventType_EVENT_TYPE_GRAPH_START),
		event("run-1", 2, pb.EventType_EVENT_TYPE_NODE_START),
		event("run-2", 2, pb.EventType_EVENT_TYPE_GRAPH_END),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	gw.PublishRecords(0, 0, recs)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, gw.URL, client.Options{From: client.FromEarliest, V2: true, JSON: true,
		Filter: client.Filter{Threads: []string{"run-2"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for range 2 {
		r, err := c.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("offset %d: %s\n", r.Offset, r.JSON)
	}
	// Output:
	// offset 1: {"event":{"header":{"threadId":"run-2","sequence":"1","type":"MESSAGE_TYPE_EVENT"},"eventType":"EVENT_TYPE_GRAPH_START"}}
	// offset 3: {"event":{"header":{"threadId":"run-2","sequence":"2","type":"MESSAGE_TYPE_EVENT"},"eventType":"EVENT_TYPE_GRAPH_END"}}
}
