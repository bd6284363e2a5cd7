package client

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"sync"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

// Cursor is a client's position: per partition the last offset applied,
// in the resume namespace of the gateway it came from.
type Cursor struct {
	Namespace string
	Offsets   map[int32]int64
}

// CursorStore keeps a cursor across restarts. Load reports ok=false when
// nothing was saved yet. The client calls them from its reading goroutine.
type CursorStore interface {
	Load(ctx context.Context) (c Cursor, ok bool, err error)
	Save(ctx context.Context, c Cursor) error
}

// MemoryStore keeps the cursor in memory (shared by clients created one
// after the other in a process). Safe for concurrent use.
type MemoryStore struct {
	mu  sync.Mutex
	c   Cursor
	set bool
}

// Load implements CursorStore.
func (m *MemoryStore) Load(context.Context) (Cursor, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Cursor{Namespace: m.c.Namespace, Offsets: maps.Clone(m.c.Offsets)}, m.set, nil
}

// Save implements CursorStore.
func (m *MemoryStore) Save(_ context.Context, c Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c, m.set = Cursor{Namespace: c.Namespace, Offsets: maps.Clone(c.Offsets)}, true
	return nil
}

// FileStore keeps the cursor in a JSON file,
// {"namespace":"…","offsets":{"0":"41"}} (the format of `dashstream tail
// --cursor-file`), replaced atomically on every save.
type FileStore struct {
	Path string
}

// Load implements CursorStore; a missing file is "nothing saved".
func (f FileStore) Load(context.Context) (Cursor, bool, error) {
	c, err := wsclient.LoadCursor(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Cursor{}, false, nil
	case err != nil:
		return Cursor{}, false, err
	}
	return Cursor{Namespace: c.Namespace, Offsets: c.Offsets()}, true, nil
}

// Save implements CursorStore.
func (f FileStore) Save(_ context.Context, c Cursor) error {
	return toInternal(c).Save(f.Path)
}

func toInternal(c Cursor) *wsclient.Cursor {
	wc := wsclient.NewCursor()
	wc.Namespace = c.Namespace
	for p, o := range c.Offsets {
		wc.Set(p, o)
	}
	return wc
}
