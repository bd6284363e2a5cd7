package buildinfo

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}}
	tests := []struct {
		name string
		in   Info
		bi   *debug.BuildInfo
		want Info
	}{
		{"go install module@version", Info{}, &debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}},
			Info{Version: "v0.1.0", GitSHA: unknown, BuildDate: unknown}},
		{"source-tree build with VCS stamp", Info{}, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			Info{Version: unknown, GitSHA: "abc123", BuildDate: "2026-12-01T10:00:00Z"}},
		{"linker flags win", Info{Version: "v9.9.9", GitSHA: "fff", BuildDate: "today"},
			&debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}, Settings: vcs},
			Info{Version: "v9.9.9", GitSHA: "fff", BuildDate: "today"}},
		{"pseudo-version", Info{}, &debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261201100000-abc123abc123"}},
			Info{Version: "v0.1.1-0.20261201100000-abc123abc123", GitSHA: unknown, BuildDate: unknown}},
		{"no build information", Info{}, nil, Info{Version: unknown, GitSHA: unknown, BuildDate: unknown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(tc.in, tc.bi); got != tc.want {
				t.Fatalf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestBinaryVersion builds the real command with a version set the way a
// release build sets it and checks `dashstream version` prints it.
func TestBinaryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "dashstream")
	ldflags := "-X github.com/dashflow/dashstream-gateway/internal/buildinfo.Version=v0.0.0-test"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "github.com/dashflow/dashstream-gateway/cmd/dashstream")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("dashstream version: %v", err)
	}
	if !strings.HasPrefix(string(out), "dashstream v0.0.0-test ") {
		t.Fatalf("dashstream version printed %q", out)
	}
}
