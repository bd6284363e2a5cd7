// Command follow is the Go example of the README ("Consume from Go"): it
// follows one run (or everything) of a DashStream gateway with pkg/client,
// joining at the run's latest full state and resuming exactly after a
// restart from a cursor file.
//
//	go run ./examples/follow -url ws://127.0.0.1:3002/ws -thread <thread_id>
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/dashflow/dashstream-gateway/pkg/client"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:3002/ws", "the gateway's WebSocket URL")
	thread := flag.String("thread", "", "follow only this run (thread id); empty: every run")
	cursor := flag.String("cursor", "follow.cursor", "file keeping the position across restarts")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := client.Options{
		V2: true, JSON: true, // records as canonical JSON
		Join:  client.JoinCheckpoint, // a fresh start shows each active run from its last full state
		Store: client.FileStore{Path: *cursor},
		Token: os.Getenv("DASHSTREAM_TOKEN"),
	}
	if *thread != "" {
		opts.Filter.Threads = []string{*thread}
	}
	c, err := client.Dial(ctx, *url, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close() // saves the cursor
	for r, err := range c.Records(ctx) {
		if err != nil {
			if ctx.Err() == nil {
				log.Print(err)
			}
			return
		}
		fmt.Printf("p%d@%d %s\n", r.Partition, r.Offset, r.JSON)
	}
}
