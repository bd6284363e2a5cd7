// Command dashstream is the DashStream gateway: it streams DashStream
// telemetry from Kafka to WebSocket clients (serve, demo) and carries the
// tools around it (tail, bench, decode, config, version).
//
// Every command prints its help the same way (usage line, summary, flags,
// examples) for `dashstream help CMD`, `dashstream CMD --help` and `-h`,
// exits 0 after help and 2 after a usage error, which is one line on stderr
// naming the bad flag or argument.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dashflow/dashstream-gateway/internal/buildinfo"
	"github.com/dashflow/dashstream-gateway/internal/config"
)

// topHelp is `dashstream help`; its flags are the global --help and --version.
var topHelp = helpText{
	name:    "<command>",
	args:    "[flags]",
	summary: "The DashStream gateway: streams DashStream telemetry from Kafka to WebSocket clients, with exact resume.",
	examples: []string{
		"dashstream demo                # open the URL it prints first",
		"dashstream tail --pretty       # in a second terminal",
		"dashstream help serve          # every setting of the gateway",
	},
}

// commandHelps lists the commands in the order `dashstream help` shows them.
var commandHelps = []*helpText{&serveHelp, &demoHelp, &tailHelp, &benchHelp, &decodeHelp, &configHelp, &versionHelp}

// command runs one subcommand; it returns the exit status.
type command func(ctx context.Context, args []string, e env) int

func commands() map[string]command {
	return map[string]command{
		"serve":   func(ctx context.Context, args []string, e env) int { return runServe(ctx, args, e, false) },
		"demo":    func(ctx context.Context, args []string, e env) int { return runServe(ctx, args, e, true) },
		"tail":    runTail,
		"bench":   runBench,
		"decode":  func(_ context.Context, args []string, e env) int { return runDecode(args, e) },
		"config":  func(_ context.Context, args []string, e env) int { return runConfig(args, e) },
		"version": func(_ context.Context, args []string, e env) int { return runVersion(args, e) },
	}
}

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], osEnv())
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		writeTopHelp(e.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		return runHelp(ctx, rest, e)
	case "--version", "-v":
		return runVersion(rest, e)
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(e.stderr, "dashstream: unknown command %q (see 'dashstream help')\n", name)
		return 2
	}
	return cmd(ctx, rest, e)
}

// runHelp is `dashstream help [CMD]`: the same text as `dashstream CMD --help`.
func runHelp(ctx context.Context, args []string, e env) int {
	if len(args) == 0 || args[0] == "help" {
		writeTopHelp(e.stdout)
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok || len(args) > 1 {
		fmt.Fprintf(e.stderr, "dashstream help: unknown command %q (see 'dashstream help')\n", args[0])
		return 2
	}
	return cmd(ctx, []string{"--help"}, e)
}

func writeTopHelp(w io.Writer) {
	h := topHelp
	h.about = "Commands:\n"
	for _, c := range commandHelps {
		h.about += fmt.Sprintf("  %-8s  %s\n", c.name, c.summary)
	}
	h.about += "\nEvery gateway setting is an environment variable with a matching flag\n" +
		"(KAFKA_BROKERS → --kafka-brokers); 'dashstream help serve' lists them.\n" +
		"'dashstream help COMMAND' (or 'dashstream COMMAND --help') shows a command's flags."
	h.write(w, func(w io.Writer) {
		fmt.Fprint(w, "  --help\n      print this help\n  --version\n      print version information (as 'dashstream version')\n")
	})
}

var versionHelp = helpText{
	name:     "version",
	args:     "[flags]",
	summary:  "Print version information: version, commit, build date and Go version.",
	examples: []string{"dashstream version", "dashstream --version"},
}

func runVersion(args []string, e env) int {
	fs := newFlagSet(&versionHelp)
	if code := fs.parse(args, e, 0); code >= 0 {
		return code
	}
	fmt.Fprintln(e.stdout, buildinfo.String())
	return 0
}

var configHelp = helpText{
	name:    "config",
	args:    "[flags]",
	summary: "Print the effective configuration as NAME=value lines, secrets redacted.",
	about: `Reads the same flags and environment variables as serve, validates them and
prints the result; every invalid value is reported with its variable's name.
Exit status: 0, or 2 on an invalid setting or a usage error.`,
	flagNote: configFlagNote,
	examples: []string{
		"dashstream config",
		"KAFKA_BROKERS=kafka-1:9092 dashstream config --websocket-port 8080",
		"dashstream config | grep ^REDIS_",
	},
}

// configFlagNote heads the flag list of the commands that read the gateway's
// configuration.
const configFlagNote = "Each flag is also the environment variable in parentheses; flags win.\n" +
	"  Durations are in the unit the name says (_SECS, _MS)."

func runConfig(args []string, e env) int {
	cfg, code := loadConfig(&configHelp, args, e)
	if cfg == nil {
		return code
	}
	if err := cfg.Print(e.stdout); err != nil {
		return 1
	}
	return 0
}

// loadConfig reads flags and environment. It returns the configuration, or
// nil and the exit status after printing the help or the error.
func loadConfig(h *helpText, args []string, e env) (*config.Config, int) {
	cfg, err := config.Load(args, e.getenv)
	switch {
	case errors.Is(err, config.ErrHelp):
		h.write(e.stdout, config.Usage)
		return nil, 0
	case err != nil:
		return nil, h.usageError(e.stderr, "%v", err)
	case len(cfg.Args) > 0:
		return nil, h.usageError(e.stderr, "unexpected argument %q", cfg.Args[0])
	}
	return cfg, -1
}

// signalContext is canceled by the first SIGINT/SIGTERM; a second one exits
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
