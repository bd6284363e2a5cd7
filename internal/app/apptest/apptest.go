// Package apptest runs a whole gateway (app.New + Run) inside a test, for
// the tests of packages that need the real thing from outside: its
// configuration comes from an environment map, it is stopped at cleanup,
// and Run's error fails the test. internal/e2e has its own, richer kit.
package apptest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/app"
	"github.com/dashflow/dashstream-gateway/internal/config"
)

// readyWithin bounds the wait for a gateway's readiness (Kafka reachable,
// the topic found).
const readyWithin = 60 * time.Second

// Start loads a configuration from env (nothing else is read), runs the
// gateway with opts and a discarding logger, waits until it is ready and
// stops it at cleanup.
func Start(t testing.TB, env map[string]string, opts app.Options) *app.App {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		done <- err
		t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(readyWithin):
		t.Fatalf("gateway not ready within %v", readyWithin)
	}
	return a
}
