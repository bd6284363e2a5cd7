package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// Toxiproxy is a private toxiproxy server started by scripts/toxiproxy.sh on
// 127.0.0.1, stopped when the test that started it ends.
type Toxiproxy struct {
	*toxiproxy.Client
	URL string
}

// StartToxiproxy builds (once, cached) and starts a toxiproxy server with its
// API on apiPort.
func StartToxiproxy(t testing.TB, apiPort int) *Toxiproxy {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "toxiproxy.sh")
	env := append(os.Environ(), "TOXIPROXY_PORT="+strconv.Itoa(apiPort),
		"TOXIPROXY_STATE_DIR="+t.TempDir(), "TOXIPROXY_WATCH_PID="+strconv.Itoa(os.Getpid()))
	run := func(verb string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script, verb)
		var stdout, stderr bytes.Buffer
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("toxiproxy.sh %s: %w\n%s", verb, err, stderr.String())
		}
		return stdout.String(), nil
	}
	if _, err := run("install"); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	t.Cleanup(func() {
		if _, err := run("stop"); err != nil {
			t.Errorf("chaos: %v", err)
		}
	})
	out, err := run("start")
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(out), "TOXIPROXY_URL=")
	if !ok {
		t.Fatalf("chaos: toxiproxy.sh start printed %q", out)
	}
	return &Toxiproxy{Client: toxiproxy.NewClient(url), URL: url}
}

// Proxy creates a proxy from 127.0.0.1:listen to upstream.
func (tp *Toxiproxy) Proxy(t testing.TB, name string, listen int, upstream string) *toxiproxy.Proxy {
	t.Helper()
	p, err := tp.CreateProxy(name, "127.0.0.1:"+strconv.Itoa(listen), upstream)
	if err != nil {
		t.Fatalf("chaos: create proxy %s: %v", name, err)
	}
	return p
}
