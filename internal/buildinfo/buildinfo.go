// Package buildinfo tells which build of the gateway is running: the git
// revision and build date, from -ldflags "-X" when the Makefile sets them,
// else from the VCS stamp the go command embeds.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/dashflow/dashstream-gateway/internal/buildinfo.GitSHA=...".
var (
	GitSHA    = ""
	BuildDate = ""
)

// SchemaVersion is the highest DashStream schema version this build knows.
const SchemaVersion = 1

// Info is the version of this build.
type Info struct {
	GitSHA    string
	BuildDate string
	GoVersion string
}

// Get returns this build's information; unknown parts are "unknown".
func Get() Info {
	info := Info{GitSHA: GitSHA, BuildDate: BuildDate, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.GitSHA == "":
				info.GitSHA = s.Value
			case s.Key == "vcs.time" && info.BuildDate == "":
				info.BuildDate = s.Value
			}
		}
	}
	if info.GitSHA == "" {
		info.GitSHA = "unknown"
	}
	if info.BuildDate == "" {
		info.BuildDate = "unknown"
	}
	return info
}

// String is the one-line version of this build.
func String() string {
	i := Get()
	return "dashstream " + i.GitSHA + " (built " + i.BuildDate + ", " + i.GoVersion + ")"
}
