package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/hub"
	"github.com/dashflow/dashstream-gateway/internal/hub/hubtest"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/pkg/client"
)

// Follow a gateway from the oldest record it retains and print what
// arrives.
func Example() {
	gw := hubtest.New(hub.Config{}, replay.MemoryConfig{}, nil) // a gateway in this process, for the example
	defer gw.Close()
	gw.PublishN(0, 0, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, gw.URL, client.Options{From: client.FromEarliest})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for range 3 {
		r, err := c.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("partition %d offset %d: %s\n", r.Partition, r.Offset, r.Value)
	}
	// Output:
	// partition 0 offset 0: v-0-0
	// partition 0 offset 1: v-0-1
	// partition 0 offset 2: v-0-2
}

// Records is the same loop as a Go iterator.
func ExampleClient_Records() {
	gw := hubtest.New(hub.Config{}, replay.MemoryConfig{}, nil)
	defer gw.Close()
	gw.PublishN(1, 40, 2)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, gw.URL, client.Options{From: client.FromEarliest})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	n := 0
	for r, err := range c.Records(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("p%d@%d %s\n", r.Partition, r.Offset, r.Value)
		if n++; n == 2 {
			break
		}
	}
	// Output:
	// p1@40 v-1-40
	// p1@41 v-1-41
}

// A FileStore keeps the cursor across restarts: the second client goes on
// where the first one stopped, with nothing lost and nothing repeated.
func ExampleFileStore() {
	gw := hubtest.New(hub.Config{}, replay.MemoryConfig{}, nil)
	defer gw.Close()
	gw.PublishN(0, 0, 4)
	dir, err := os.MkdirTemp("", "cursor")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	store := client.FileStore{Path: filepath.Join(dir, "cursor.json")}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for run := 1; run <= 2; run++ {
		c, err := client.Dial(ctx, gw.URL, client.Options{From: client.FromEarliest, Store: store})
		if err != nil {
			fmt.Println(err)
			return
		}
		for range 2 {
			r, err := c.Next(ctx)
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Printf("run %d: offset %d\n", run, r.Offset)
		}
		if err := c.Close(); err != nil { // saves the cursor
			fmt.Println(err)
			return
		}
	}
	// Output:
	// run 1: offset 0
	// run 1: offset 1
	// run 2: offset 2
	// run 2: offset 3
}
