package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var jsonCT = map[string]string{"Content-Type": "application/json"}

func TestSchemaAPI(t *testing.T) {
	f := newFixture(t, nil)
	if w := f.do(t, "GET", "/api/expected-schema", "", nil); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Fatalf("empty list: %d %s", w.Code, w.Body)
	}
	w := f.do(t, "GET", "/api/expected-schema/g1", "", nil)
	if b := decode(t, w); w.Code != 404 || b["error"] != "No expected schema set for this graph" || b["graph_name"] != "g1" {
		t.Fatalf("missing: %d %s", w.Code, w.Body)
	}
	before := time.Now().UnixMilli()
	w = f.do(t, "PUT", "/api/expected-schema/g1", `{"schema_id":"abc","note":"n"}`, jsonCT)
	if w.Code != 200 {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	b := decode(t, w)
	wantShape := map[string]string{".schema_id": "string", ".graph_name": "string", ".environment": "null",
		".pinned_at": "number", ".pinned_by": "null", ".note": "string"}
	if got := shapeOf(t, w.Body.Bytes()); !reflect.DeepEqual(got, wantShape) {
		t.Fatalf("entry shape %v", got)
	}
	if b["schema_id"] != "abc" || b["graph_name"] != "g1" || int64(b["pinned_at"].(float64)) < before {
		t.Fatalf("entry %v", b)
	}
	if w := f.do(t, "GET", "/api/expected-schema/g1", "", nil); w.Code != 200 || decode(t, w)["note"] != "n" {
		t.Fatalf("get: %d %s", w.Code, w.Body)
	}
	var list []SchemaEntry
	w = f.do(t, "GET", "/api/expected-schema", "", nil)
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != 1 {
		t.Fatalf("list %s", w.Body)
	}
	if w := f.do(t, "DELETE", "/api/expected-schema/g1", "", nil); w.Code != 200 || decode(t, w)["schema_id"] != "abc" {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	w = f.do(t, "DELETE", "/api/expected-schema/g1", "", nil)
	if b := decode(t, w); w.Code != 404 || b["error"] != "No expected schema to delete" || b["graph_name"] != "g1" {
		t.Fatalf("delete missing: %d %s", w.Code, w.Body)
	}
}

func TestSchemaPutErrors(t *testing.T) {
	cases := []struct {
		name, target, body string
		hdr                map[string]string
		code               int
	}{
		{"no content type", "/api/expected-schema/g", `{"schema_id":"a"}`, nil, 415},
		{"text", "/api/expected-schema/g", `{"schema_id":"a"}`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"json with charset", "/api/expected-schema/g", `{"schema_id":"a"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 200},
		{"bad json", "/api/expected-schema/g", `{"schema_id":`, jsonCT, 400},
		{"not an object", "/api/expected-schema/g", `["x"]`, jsonCT, 400},
		{"null body", "/api/expected-schema/g", `null`, jsonCT, 400},
		{"missing schema_id", "/api/expected-schema/g", `{"note":"x"}`, jsonCT, 422},
		{"empty schema_id", "/api/expected-schema/g", `{"schema_id":""}`, jsonCT, 422},
		{"number schema_id", "/api/expected-schema/g", `{"schema_id":5}`, jsonCT, 422},
		{"bad optional", "/api/expected-schema/g", `{"schema_id":"a","environment":3}`, jsonCT, 422},
		{"long note", "/api/expected-schema/g", `{"schema_id":"a","note":"` + strings.Repeat("x", maxOptionalBytes+1) + `"}`, jsonCT, 422},
		{"too large", "/api/expected-schema/g", `{"schema_id":"a","note":"` + strings.Repeat("x", maxJSONBody) + `"}`, jsonCT, 413},
		{"long graph name", "/api/expected-schema/" + strings.Repeat("g", maxGraphNameBytes+1), `{"schema_id":"a"}`, jsonCT, 400},
		{"control char name", "/api/expected-schema/a%0Ab", `{"schema_id":"a"}`, jsonCT, 400},
		{"unicode name ok", "/api/expected-schema/graph%20%C3%A9t%C3%A9", `{"schema_id":"a"}`, jsonCT, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if w := f.do(t, "PUT", tc.target, tc.body, tc.hdr); w.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.code, w.Body)
			}
		})
	}
}

func TestSchemaAuth(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.AdminToken = "s3cret" })
	cases := []struct {
		method, auth string
		code         int
	}{
		{"PUT", "", 401},
		{"PUT", "Basic s3cret", 401},
		{"PUT", "Bearer wrong", 403},
		{"PUT", "Bearer s3cret", 200},
		{"DELETE", "", 401},
		{"DELETE", "Bearer s3cre", 403},
		{"DELETE", "bearer s3cret", 200},
	}
	for _, tc := range cases {
		hdr := map[string]string{"Content-Type": "application/json"}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		if w := f.do(t, tc.method, "/api/expected-schema/g", `{"schema_id":"a"}`, hdr); w.Code != tc.code {
			t.Errorf("%s %q: %d, want %d", tc.method, tc.auth, w.Code, tc.code)
		}
	}
	if w := f.do(t, "GET", "/api/expected-schema", "", nil); w.Code != 200 {
		t.Errorf("reads stay open: %d", w.Code)
	}
}

func TestSchemaPersistenceAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "expected_schemas.json")
	s, err := OpenSchemaStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := "prod"
	if _, err := s.Put("g1", SchemaPin{SchemaID: "a", Environment: &env}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("g2", SchemaPin{SchemaID: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Delete("g2"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	again, err := OpenSchemaStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.List(), s.List()) || len(again.List()) != 1 || *again.List()[0].Environment != "prod" {
		t.Fatalf("reloaded %+v, had %+v", again.List(), s.List())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left: %v", leftovers)
	}
}

func TestSchemaReloadThroughServer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.json")
	f := newFixture(t, func(d *Deps) { d.SchemasPath = path })
	f.do(t, "PUT", "/api/expected-schema/g", `{"schema_id":"a","pinned_by":"me"}`, jsonCT)
	g := newFixture(t, func(d *Deps) { d.SchemasPath = path })
	if w := g.do(t, "GET", "/api/expected-schema/g", "", nil); w.Code != 200 || decode(t, w)["pinned_by"] != "me" {
		t.Fatalf("reload: %d %s", w.Code, w.Body)
	}
}

func TestSchemaLoadsArrayFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	data := `[{"schema_id":"a","graph_name":"g","environment":null,"pinned_at":5,"pinned_by":null,"note":null}]`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSchemaStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := s.Get("g"); !ok || e.PinnedAt != 5 {
		t.Fatalf("entry %+v", e)
	}
}

func TestSchemaCorruptFileMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSchemaStore(path, func() time.Time { return time.Unix(42, 0) })
	if err == nil || s == nil || len(s.List()) != 0 {
		t.Fatalf("err %v", err)
	}
	if data, rerr := os.ReadFile(path + ".corrupt-42"); rerr != nil || string(data) != "{not json" {
		t.Fatalf("corrupt file not kept: %v", rerr)
	}
}

func TestSchemaWriteFailureKeepsState(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := OpenSchemaStore(filepath.Join(blocker, "s.json"), nil) // parent is a file
	if _, err := s.Put("g", SchemaPin{SchemaID: "a"}); err == nil {
		t.Fatal("write under a file succeeded")
	}
	if _, ok := s.Get("g"); ok {
		t.Fatal("failed write became visible")
	}
	f := newFixture(t, func(d *Deps) { d.SchemasPath = filepath.Join(blocker, "s.json") })
	if w := f.do(t, "PUT", "/api/expected-schema/g", `{"schema_id":"a"}`, jsonCT); w.Code != 500 {
		t.Fatalf("code %d", w.Code)
	}
}

// TestSchemaConcurrentWrites races PUTs and DELETEs and checks that the file
// on disk equals the final in-memory state.
func TestSchemaConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	f := newFixture(t, func(d *Deps) { d.SchemasPath = path })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				name := fmt.Sprintf("/api/expected-schema/graph-%d", (g*7+i)%10)
				if i%3 == 2 {
					f.do(t, "DELETE", name, "", nil)
				} else {
					f.do(t, "PUT", name, fmt.Sprintf(`{"schema_id":"s-%d-%d"}`, g, i), jsonCT)
				}
				f.do(t, "GET", "/api/expected-schema", "", nil)
			}
		})
	}
	wg.Wait()
	disk, err := OpenSchemaStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(disk.List(), f.srv.Schemas().List()) {
		t.Fatalf("disk %v\nmemory %v", disk.List(), f.srv.Schemas().List())
	}
}

func TestSchemaStoreCap(t *testing.T) {
	s, _ := OpenSchemaStore(filepath.Join(t.TempDir(), "s.json"), nil)
	s.entries = make(map[string]SchemaEntry, maxSchemaEntries)
	for i := range maxSchemaEntries {
		s.entries[fmt.Sprint(i)] = SchemaEntry{}
	}
	if _, err := s.Put("new", SchemaPin{SchemaID: "a"}); !errors.Is(err, ErrTooManySchemas) {
		t.Fatalf("err %v", err)
	}
	if _, err := s.Put("1", SchemaPin{SchemaID: "a"}); err != nil {
		t.Fatalf("replacing at the cap: %v", err)
	}
}
