// Command dashstream is the DashStream gateway: it streams DashStream
// telemetry from Kafka to WebSocket clients (serve, demo) and carries the
// tools around it (tail, bench, decode, config, version).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dashflow/dashstream-gateway/internal/app"
	"github.com/dashflow/dashstream-gateway/internal/buildinfo"
	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/replay"
	"github.com/dashflow/dashstream-gateway/internal/rlimit"
)

const usage = `usage: dashstream <command> [flags]

commands:
  serve     run the gateway (Kafka → WebSocket); without KAFKA_BROKERS an embedded development broker
  demo      serve plus a synthetic DashFlow workload; prints the URL to open
  tail      print the live stream (and resume from a cursor file)
  bench     end-to-end load benchmark (embedded gateway or --url)
  decode    decode captured record values: dashstream decode [--json] FILE...
  config    print the effective configuration (secrets redacted)
  version   print version information

Every setting is an environment variable with a matching flag (KAFKA_BROKERS → --kafka-brokers);
run 'dashstream config --help' for the list.
`

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, false)
	case "demo":
		return runServe(ctx, rest, true)
	case "tail":
		return runTail(ctx, rest, os.Stdout, os.Stderr)
	case "bench":
		return runBench(ctx, rest, os.Stdout, os.Stderr)
	case "decode":
		return runDecode(rest, os.Stdin, os.Stdout, os.Stderr)
	case "config":
		return runConfig(rest, os.Stdout, os.Stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(os.Stdout, buildinfo.String())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "dashstream: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one exits
// at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			signal.Stop(ch)
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "dashstream: second signal, exiting now")
			os.Exit(130)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// loadConfig reads flags and environment; it prints help or the error.
func loadConfig(args []string, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(args, os.Getenv)
	if errors.Is(err, config.ErrHelp) {
		config.Usage(stderr)
		return nil, 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashstream: %v\n", err)
		return nil, 2
	}
	return cfg, -1
}

func runConfig(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadConfig(args, stderr)
	if cfg == nil {
		return code
	}
	if err := cfg.Print(stdout); err != nil {
		return 1
	}
	return 0
}

func runServe(ctx context.Context, args []string, demo bool) int {
	cfg, code := loadConfig(args, os.Stderr)
	if cfg == nil {
		return code
	}
	// SPEC §7: /ws enforces whatever AuthConfigured reports (limits.Authenticator
	// in front of the hub), so a public bind needs it or an explicit opt-out.
	if cfg.BindsPublic() && !cfg.AuthConfigured() && !cfg.InsecurePublic {
		fmt.Fprintf(os.Stderr, "dashstream: refusing to listen on %s without client authentication; "+
			"set WEBSOCKET_AUTH_TOKEN (or JWT settings), or pass --insecure-public to accept the risk\n", cfg.Server.Host)
		return 2
	}
	log := newLogger(cfg)
	raiseFDLimit(log)
	replay.SetRedisLogger(log.With("component", "go-redis"))
	a, err := app.New(cfg, log, app.Options{Demo: demo})
	if err != nil {
		log.Error("startup failed", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}

// raiseFDLimit lifts the soft open-file limit to the hard limit before the
// gateway derives its connection budget from it: every client costs a
// descriptor.
func raiseFDLimit(log *slog.Logger) {
	if _, ok := rlimit.Current(); !ok {
		return // no such limit on this platform
	}
	before, after, err := rlimit.Raise()
	if err != nil {
		log.Warn("open-file limit not raised", "soft", before.Soft, "hard", before.Hard, "err", err)
		return
	}
	log.Info("open-file limit", "soft", after.Soft, "hard", after.Hard, "soft_before", before.Soft)
}

func newLogger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
