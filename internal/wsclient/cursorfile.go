package wsclient

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// ApplyControl updates the cursor from a control frame: gap and skipped
// announce offsets it may pass; cursor_stale drops the partition (its
// offsets are of another topic or gone, the server restarts it);
// replay_complete and cursor_reset_complete position it. Other frames are
// ignored. An error means the frame was malformed.
func (c *Cursor) ApplyControl(ctl Control) error {
	switch ctl.Type {
	case "gap":
		var g Gap
		if err := ctl.Decode(&g); err != nil {
			return err
		}
		c.Announce(g.Partition, int64(g.FromOffset), int64(g.ToOffset))
	case "skipped":
		var s Skipped
		if err := ctl.Decode(&s); err != nil {
			return err
		}
		c.Announce(s.Partition, int64(s.Offset), int64(s.Offset))
	case "cursor_stale":
		var s CursorStale
		if err := ctl.Decode(&s); err != nil {
			return err
		}
		c.Forget(s.Partition)
	case "replay_complete":
		return c.applyReplayComplete(ctl)
	case "cursor_reset_complete":
		return c.applyReset(ctl)
	}
	return nil
}

func (c *Cursor) applyReplayComplete(ctl Control) error {
	var rc ReplayComplete
	if err := ctl.Decode(&rc); err != nil {
		return err
	}
	for p, o := range rc.LastOffsetsByPartition {
		c.advance(p, int64(o))
	}
	return nil
}

func (c *Cursor) applyReset(ctl Control) error {
	var rc CursorResetComplete
	if err := ctl.Decode(&rc); err != nil {
		return err
	}
	clear(c.parts)
	for p, o := range rc.LatestOffsetsByPartition {
		c.Set(p, int64(o))
	}
	return nil
}

// cursorFile is the on-disk form: {"namespace":"…","offsets":{"0":"41"}}.
type cursorFile struct {
	Namespace string            `json:"namespace"`
	Offsets   map[string]Offset `json:"offsets"`
}

// MarshalJSON encodes the cursor in its file form, offsets as strings.
func (c *Cursor) MarshalJSON() ([]byte, error) {
	offs := make(map[string]string, len(c.parts))
	for p, st := range c.parts {
		offs[strconv.Itoa(int(p))] = strconv.FormatInt(st.last, 10)
	}
	return json.Marshal(struct {
		Namespace string            `json:"namespace"`
		Offsets   map[string]string `json:"offsets"`
	}{c.Namespace, offs})
}

// Save writes the cursor to path atomically: a temporary file in the same
// directory, synced, then renamed over path.
func (c *Cursor) Save(path string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("wsclient: save cursor: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("wsclient: save cursor: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("wsclient: save cursor %s: %w", path, err)
	}
	return nil
}

// LoadCursor reads a cursor saved by Save. A missing file is an error
// wrapping fs.ErrNotExist.
func LoadCursor(path string) (*Cursor, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the --cursor-file the user named
	if err != nil {
		return nil, fmt.Errorf("wsclient: load cursor: %w", err)
	}
	var f cursorFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("wsclient: load cursor %s: %w", path, err)
	}
	c := NewCursor()
	c.Namespace = f.Namespace
	for k, o := range f.Offsets {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil || p < 0 || o < -1 {
			return nil, fmt.Errorf("wsclient: load cursor %s: bad entry %q: %d", path, k, o)
		}
		c.Set(int32(p), int64(o))
	}
	return c, nil
}
