package httpserver

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dashflow/dashstream-gateway/web"
)

func TestBuiltinUI(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.UI = web.FS() })
	w := f.do(t, "GET", "/", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "DashStream") || w.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("index: %d %q", w.Code, w.Header())
	}
	for _, p := range []string{"/app.js", "/ui.js", "/style.css"} {
		if w := f.do(t, "GET", p, "", nil); w.Code != 200 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
	if index := w.Body.String(); !strings.Contains(index, `<script src="ui.js"></script>`) ||
		strings.Index(index, `src="ui.js"`) > strings.Index(index, `src="app.js"`) {
		t.Errorf("index does not load ui.js before app.js")
	}
	// The /ws URL is built in ui.js, shared by the live view and the run view.
	shared := f.do(t, "GET", "/ui.js", "", nil).Body.String()
	if !strings.Contains(shared, `new URL("ws"`) {
		t.Errorf("ui.js lacks %q", `new URL("ws"`)
	}
	js := f.do(t, "GET", "/app.js", "", nil).Body.String()
	for _, want := range []string{"UI.wsURL()", "lastOffsetsByPartition", `from: "latest"`, `from: "cursor"`} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %q", want)
		}
	}
	if w := f.do(t, "GET", "/missing.js", "", nil); w.Code != 404 {
		t.Errorf("missing asset: %d", w.Code)
	}
	if w := f.do(t, "POST", "/", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", w.Code)
	}
}

func TestNoUI(t *testing.T) {
	f := newFixture(t, nil)
	if w := f.do(t, "GET", "/", "", nil); w.Code != 404 {
		t.Fatalf("code %d", w.Code)
	}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUIDir(t *testing.T) {
	base := t.TempDir()
	dist := filepath.Join(base, "dist")
	writeTree(t, base, map[string]string{
		"secret.txt":           "outside",
		"dist/index.html":      "<html>dashboard</html>",
		"dist/assets/app.js":   "js",
		"dist/docs/index.html": "docs",
		"dist/nolist/a.txt":    "a",
		"dist/.env":            "TOKEN=x",
	})
	if err := os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(dist, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(d *Deps) { d.UIDir = dist; d.UI = web.FS() })
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/", 200, "dashboard"},
		{"/assets/app.js", 200, "js"},
		{"/docs/", 200, "docs"},
		{"/docs", 301, ""},
		{"/nolist/", 404, ""},
		{"/nolist/a.txt", 200, "a"},
		{"/../secret.txt", 307, ""}, // the mux cleans it to /secret.txt
		{"/secret.txt", 404, ""},
		{"/%2e%2e/secret.txt", 404, ""},
		{"/escape.txt", 404, ""},
		{"/.env", 404, ""},
		{"/threads/abc", 200, "dashboard"}, // single-page app route
		{"/assets/missing.js", 404, ""},
	}
	for _, tc := range cases {
		w := f.do(t, "GET", tc.path, "", nil)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.path, w.Code, w.Body.String(), tc.code, tc.body)
		}
		if strings.Contains(w.Body.String(), "outside") || strings.Contains(w.Body.String(), "TOKEN") {
			t.Errorf("%s leaked a file outside the UI", tc.path)
		}
	}
	if w := f.do(t, "GET", "/", "", nil); w.Header().Get("Content-Security-Policy") != "" {
		t.Error("UIDir must not get the built-in CSP")
	}
}

func TestUIDirMissing(t *testing.T) {
	_, err := New(Config{}, Deps{UIDir: filepath.Join(t.TempDir(), "nope"), SchemasPath: filepath.Join(t.TempDir(), "s.json")})
	if err == nil {
		t.Fatal("missing UI dir accepted")
	}
}

func TestStaticHandlerNoIndexAtRoot(t *testing.T) {
	fsys := fstest.MapFS{"a.txt": {Data: []byte("a")}}
	h := staticHandler(fs.FS(fsys), "")
	for path, code := range map[string]int{"/": 404, "/a.txt": 200, "/route": 404} {
		r, _ := http.NewRequest("GET", path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != code {
			t.Errorf("%s: %d, want %d", path, w.Code, code)
		}
	}
}
