package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of the pinned-schema store.
const (
	maxGraphNameBytes = 256
	maxSchemaIDBytes  = 512
	maxOptionalBytes  = 4096
	maxSchemaEntries  = 10000
)

// SchemaEntry is one pinned expected graph schema. Absent optionals are nil
// and encode as JSON null.
type SchemaEntry struct {
	SchemaID    string  `json:"schema_id"`
	GraphName   string  `json:"graph_name"`
	Environment *string `json:"environment"`
	PinnedAt    int64   `json:"pinned_at"` // unix milliseconds
	PinnedBy    *string `json:"pinned_by"`
	Note        *string `json:"note"`
}

// SchemaPin is the body of a PUT: what the client may set.
type SchemaPin struct {
	SchemaID    string
	Environment *string
	PinnedBy    *string
	Note        *string
}

// SchemaStore keeps pinned schemas in memory and persists every change
// atomically (temporary file in the same directory, fsync, rename) before it
// becomes visible. Readers take mu only; writers are serialised by writeMu,
// which is held across file I/O so readers never wait on the disk.
type SchemaStore struct {
	path string
	now  func() time.Time

	writeMu sync.Mutex // serialises Put and Delete, held during I/O

	mu      sync.RWMutex
	entries map[string]SchemaEntry // guarded by mu; replaced, never mutated
}

// OpenSchemaStore loads path (missing: empty store). A file that cannot be
// parsed is moved aside to path.corrupt-<unix> so that it is not overwritten,
// and the store starts empty; the returned error then says so and the store
// is still usable.
func OpenSchemaStore(path string, now func() time.Time) (*SchemaStore, error) {
	if now == nil {
		now = time.Now
	}
	s := &SchemaStore{path: path, now: now, entries: map[string]SchemaEntry{}}
	entries, err := readSchemas(path)
	if err == nil {
		s.entries = entries
		return s, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, now().Unix())
	if rerr := os.Rename(path, aside); rerr != nil {
		return s, fmt.Errorf("schemas: load %s: %w (and moving it aside failed: %w)", path, err, rerr)
	}
	return s, fmt.Errorf("schemas: load %s: %w; moved to %s, starting empty", path, err, aside)
}

// readSchemas reads an object keyed by graph name, or an array of entries.
func readSchemas(path string) (map[string]SchemaEntry, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: EXPECTED_SCHEMAS_PATH, set by the operator
	if err != nil {
		return nil, err
	}
	byName := map[string]SchemaEntry{}
	if err := json.Unmarshal(data, &byName); err == nil {
		for name, e := range byName {
			e.GraphName = name
			byName[name] = e
		}
		return byName, nil
	}
	var list []SchemaEntry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, err
	}
	for _, e := range list {
		byName[e.GraphName] = e
	}
	return byName, nil
}

// List returns every entry ordered by graph name.
func (s *SchemaStore) List() []SchemaEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]SchemaEntry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GraphName < out[j].GraphName })
	return out
}

// Get returns the entry of graph.
func (s *SchemaStore) Get(graph string) (SchemaEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entries[graph]
	return e, ok
}

// Put pins pin for graph, persists, and returns the new entry.
func (s *SchemaStore) Put(graph string, pin SchemaPin) (SchemaEntry, error) {
	e := SchemaEntry{
		SchemaID: pin.SchemaID, GraphName: graph, Environment: pin.Environment,
		PinnedAt: s.now().UnixMilli(), PinnedBy: pin.PinnedBy, Note: pin.Note,
	}
	err := s.update(func(m map[string]SchemaEntry) error {
		if _, ok := m[graph]; !ok && len(m) >= maxSchemaEntries {
			return ErrTooManySchemas
		}
		m[graph] = e
		return nil
	})
	return e, err
}

// Delete removes the entry of graph, persists, and returns it; ok is false
// when there was none.
func (s *SchemaStore) Delete(graph string) (removed SchemaEntry, ok bool, err error) {
	err = s.update(func(m map[string]SchemaEntry) error {
		removed, ok = m[graph]
		delete(m, graph)
		return nil
	})
	return removed, ok, err
}

// update applies change to a copy, persists the copy, then publishes it.
func (s *SchemaStore) update(change func(map[string]SchemaEntry) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	next := make(map[string]SchemaEntry, len(s.entries)+1)
	for k, v := range s.entries {
		next[k] = v
	}
	s.mu.RUnlock()
	if err := change(next); err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, next); err != nil {
		return fmt.Errorf("schemas: save %s: %w", s.path, err)
	}
	s.mu.Lock()
	s.entries = next
	s.mu.Unlock()
	return nil
}

// writeFileAtomic writes v as JSON to a temporary file next to path, syncs
// it, renames it over path and syncs the directory.
func writeFileAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := writeAndSync(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func writeAndSync(f *os.File, data []byte) error {
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G304: the directory of EXPECTED_SCHEMAS_PATH
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot sync a directory; the rename already happened.
	_ = d.Sync()
	return nil
}

// validGraphName bounds a graph name: 1..256 bytes of printable UTF-8.
func validGraphName(s string) bool {
	if s == "" || len(s) > maxGraphNameBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
