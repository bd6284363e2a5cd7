package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/dashflow/dashstream-gateway/internal/app"
	"github.com/dashflow/dashstream-gateway/internal/config"
	"github.com/dashflow/dashstream-gateway/internal/rlimit"
)

var serveHelp = helpText{
	name:    "serve",
	args:    "[flags]",
	summary: "Run the gateway: stream DashStream records from Kafka to WebSocket clients.",
	about: `Without KAFKA_BROKERS it starts the embedded development broker, which is
accepted on a loopback bind only. A non-loopback bind (WEBSOCKET_HOST) needs
KAFKA_BROKERS and client authentication, or --insecure-public to waive the
authentication (never the brokers). Logs go to stderr.
Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on a failure, 2 on
an invalid setting, a refused bind or a usage error.`,
	flagNote: configFlagNote,
	examples: []string{
		"dashstream serve                      # loopback, embedded development broker",
		"KAFKA_BROKERS=kafka-1:9092 REDIS_URL=redis://redis:6379/0 dashstream serve",
		`dashstream serve --websocket-host 0.0.0.0 --kafka-brokers kafka-1:9092 --websocket-auth-token "$TOKEN"`,
	},
}

var demoHelp = helpText{
	name:    "demo",
	args:    "[flags]",
	summary: "Run the gateway with a synthetic DashFlow workload; the first line printed is the URL to open.",
	about: `The first line on stdout is the page to open (http://127.0.0.1:3002/ by
default), printed before anything else; logs, the configuration among them,
go to stderr. With WEBSOCKET_PORT=0 the URL follows once the gateway is ready.
The URL never carries a secret: when client auth is configured, append
#token=<token> to it (the page keeps the token for the tab, and a URL
fragment never reaches a server or its logs).
Settings and exit status are serve's; the workload goes to KAFKA_TOPIC.`,
	flagNote: configFlagNote,
	examples: []string{
		"dashstream demo",
		"dashstream demo --websocket-port 8080",
		"WEBSOCKET_AUTH_TOKEN=secret dashstream demo   # open the URL with #token=secret",
	},
}

// runServe is `dashstream serve` and, with demo, `dashstream demo`.
func runServe(ctx context.Context, args []string, e env, demo bool) int {
	h := &serveHelp
	if demo {
		h = &demoHelp
	}
	cfg, code := loadConfig(h, args, e)
	if cfg == nil {
		return code
	}
	// docs/PROTOCOL.md §7: a public bind needs real brokers, and auth or its explicit
	// opt-out (/ws enforces whatever AuthConfigured reports).
	if err := cfg.CheckBind(); err != nil {
		fmt.Fprintf(e.stderr, "dashstream %s: %v\n", h.name, err)
		return 2
	}
	if demo && cfg.Server.Port != 0 {
		announce(cfg, e, net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port))) // before any log line
	}
	log := newLogger(cfg, e.stderr)
	raiseFDLimit(log)
	a, err := app.New(cfg, log, app.Options{Demo: demo})
	if err != nil {
		log.Error("startup failed", "err", err)
		return 1
	}
	if demo && cfg.Server.Port == 0 {
		wait := announceWhenReady(ctx, cfg, a, e)
		defer wait()
	}
	if err := a.Run(ctx); err != nil {
		log.Error("gateway stopped with an error", "err", err)
		return 1
	}
	return 0
}

// announce prints the page to open as demo's first stdout line; with a
// configured port it comes first of all, before the configuration is logged.
func announce(cfg *config.Config, e env, hostPort string) {
	scheme := "http"
	if cfg.Security.TLS() {
		scheme = "https"
	}
	fmt.Fprintln(e.stdout, pageURL(scheme, hostPort))
	if cfg.AuthConfigured() {
		fmt.Fprintln(e.stderr, "dashstream demo: client auth is on: open the URL with #token=<token> appended")
	}
}

// announceWhenReady announces the page once a gateway on port 0 is ready
// (the port is known then). The returned func waits for it to be done.
func announceWhenReady(ctx context.Context, cfg *config.Config, a *app.App, e env) (wait func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-a.Ready():
			announce(cfg, e, a.HTTPAddr())
		case <-stopped:
		case <-ctx.Done():
		}
	}()
	return func() { close(stopped); <-done }
}

// pageURL is the URL a browser on this machine opens for a gateway bound
// to hostPort: a wildcard bind is reached through loopback.
func pageURL(scheme, hostPort string) string {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return scheme + "://" + hostPort + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
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

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
