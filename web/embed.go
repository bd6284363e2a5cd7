// Package web holds the gateway's built-in web UI (static files embedded in
// the binary): a live view of the records streamed on /ws, with resume from
// the last cursor after a reconnect, the runs of the run index
// (/api/threads), and a run view (run.html) that follows one run over
// protocol v2. The returned file system is read-only and safe for
// concurrent use.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the UI files with index.html at the root.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is embedded above: cannot fail
	}
	return sub
}
