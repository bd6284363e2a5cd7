// Package buildinfo tells which build of the gateway is running: the release
// version, git revision and build date, from -ldflags "-X" when the Makefile
// or the release build sets them, else from the build information the go
// command embeds (the module version for `go install …@v0.1.0`, the VCS stamp
// for a build inside a git checkout). Read-only after program start.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/dashflow/dashstream-gateway/internal/buildinfo.Version=...".
var (
	Version   = ""
	GitSHA    = ""
	BuildDate = ""
)

// SchemaVersion is the highest DashStream schema version this build knows.
const SchemaVersion = 1

// unknown stands for a part the build did not record.
const unknown = "unknown"

// Info is the version of this build.
type Info struct {
	Version   string // module version ("v0.1.0"), or "unknown" for a development build
	GitSHA    string
	BuildDate string
	GoVersion string
}

// Get returns this build's information; unknown parts are "unknown".
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Info{Version: Version, GitSHA: GitSHA, BuildDate: BuildDate, GoVersion: runtime.Version()}, bi)
}

// resolve fills the parts the linker flags left empty from bi (nil when the
// binary carries no build information).
func resolve(info Info, bi *debug.BuildInfo) Info {
	if bi != nil {
		// "(devel)" is what the go command records for a build of the main
		// module from its own source tree: no release version.
		if info.Version == "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.GitSHA == "":
				info.GitSHA = s.Value
			case s.Key == "vcs.time" && info.BuildDate == "":
				info.BuildDate = s.Value
			}
		}
	}
	for _, p := range []*string{&info.Version, &info.GitSHA, &info.BuildDate} {
		if *p == "" {
			*p = unknown
		}
	}
	return info
}

// String is the one-line version of this build, e.g.
// "dashstream v0.1.0 3f2a… (built 2026-12-02T00:00:00Z, go1.26.8)".
func String() string {
	i := Get()
	return "dashstream " + i.Version + " " + i.GitSHA + " (built " + i.BuildDate + ", " + i.GoVersion + ")"
}
