package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/bench"
)

// startChild runs the embedded gateway as a child "dashstream serve" process
// on free loopback ports, so the benchmark's load generator does not share
// the gateway's runtime and the gateway's memory is measured alone.
func startChild(ctx context.Context, o benchOptions, log *slog.Logger, stderr io.Writer) (bench.Target, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return bench.Target{}, nil, fmt.Errorf("locate own binary: %w", err)
	}
	httpPort, kafkaPort, err := twoFreePorts()
	if err != nil {
		return bench.Target{}, nil, err
	}
	env := embeddedEnv(o)
	env["WEBSOCKET_PORT"] = strconv.Itoa(httpPort)
	env["EMBEDDED_KAFKA_ADDR"] = "127.0.0.1:" + strconv.Itoa(kafkaPort)
	cmd := exec.Command(exe, "serve") //nolint:gosec // G204: exe is this very program (os.Executable)
	cmd.Env = childEnv(env)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return bench.Target{}, nil, fmt.Errorf("start gateway: %w", err)
	}
	stop := func() { stopChild(cmd) }
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	if err := awaitReadyz(ctx, base); err != nil {
		stop()
		return bench.Target{}, nil, err
	}
	log.Info("gateway child ready", "pid", cmd.Process.Pid, "url", base)
	return bench.Target{URL: "ws://127.0.0.1:" + strconv.Itoa(httpPort) + "/ws",
		Brokers: []string{env["EMBEDDED_KAFKA_ADDR"]}, Topic: o.topic, PID: cmd.Process.Pid, Mode: "embedded"}, stop, nil
}

// childEnv is a clean environment: the variables that locate the system,
// plus the gateway's; nothing else (a stray KAFKA_BROKERS must not leak in).
func childEnv(env map[string]string) []string {
	out := []string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "DEBUG_PPROF_ADDR"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func twoFreePorts() (int, int, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}

func awaitReadyz(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("gateway child not ready within 30s")
}

// stopChild asks the gateway to shut down and kills it if it does not.
func stopChild(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// startFloorSink runs the reading side of `bench --floor` as a child
// `dashstream bench --floor-sink` process, which stops when its stdin
// closes (when this process stops it, or dies).
func startFloorSink(ctx context.Context, addr string, n int) (func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "--floor-sink", addr, "--clients", strconv.Itoa(n)) //nolint:gosec // G204: exe is this very program (os.Executable)
	cmd.Env = childEnv(nil)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start floor sink: %w", err)
	}
	return func() {
		stdin.Close()
		_ = cmd.Wait()
	}, nil
}

// runFloorSink implements the hidden `bench --floor-sink`: it drains until
// its stdin closes.
func runFloorSink(ctx context.Context, o benchOptions, e env) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, e.stdin)
		cancel()
	}()
	if err := bench.FloorSink(ctx, o.floorSink, o.clients); err != nil {
		fmt.Fprintf(e.stderr, "dashstream bench: %v\n", err)
		return 1
	}
	return 0
}
