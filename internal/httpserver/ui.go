package httpserver

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// builtinCSP is the content security policy of the built-in UI; another
// static build (UIDir) brings its own needs and gets none.
const builtinCSP = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'; img-src 'self' data:"

// uiHandler serves UIDir through an os.Root (no path or symlink can leave
// it), else the built-in UI, else 404.
func (s *Server) uiHandler() (http.Handler, error) {
	if s.deps.UIDir != "" {
		root, err := os.OpenRoot(s.deps.UIDir)
		if err != nil {
			return nil, fmt.Errorf("httpserver: ui dir: %w", err)
		}
		s.uiRoot = root
		return staticHandler(root.FS(), ""), nil
	}
	if s.deps.UI != nil {
		return staticHandler(s.deps.UI, builtinCSP), nil
	}
	return http.NotFoundHandler(), nil
}

// staticHandler serves fsys with index.html for directories, never a
// directory listing, never a dot file, and index.html for extension-less
// paths that do not exist (client-side routes of a single-page app).
func staticHandler(fsys fs.FS, csp string) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		if hidden(name) {
			http.NotFound(w, r)
			return
		}
		fi, err := fs.Stat(fsys, name)
		switch {
		case err == nil && fi.IsDir() && !exists(fsys, path.Join(name, "index.html")):
			http.NotFound(w, r)
		case err != nil && path.Ext(name) == "" && exists(fsys, "index.html"):
			http.ServeFileFS(w, r, fsys, "index.html")
		case err != nil: // missing, or a symlink leaving the root
			http.NotFound(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	})
}

// hidden reports whether a path has a dot-file segment (.git, .env…).
func hidden(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." {
			return true
		}
	}
	return false
}

func exists(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && !fi.IsDir()
}
