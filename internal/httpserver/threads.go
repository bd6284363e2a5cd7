package httpserver

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// Threads is what /api/threads serves (docs/PROTOCOL.md §3.9): the run
// index and a thread's history. The replay tiers (replay.Tiers) implement
// it; app connects them.
type Threads interface {
	Runs(q replay.RunQuery) (runs []replay.Run, more bool)
	ThreadHistory(ctx context.Context, thread string, after uint64, limit int) (replay.History, error)
}

// Page sizes of the thread routes.
const (
	defaultThreadPage = 100
	maxThreadPage     = 1000
	maxThreadIDBytes  = 8 << 10
	// maxHistoryReads bounds the history requests served at once: a page
	// may need a Kafka deep read per record, and those share the deep
	// reader's slots with WebSocket resumes.
	maxHistoryReads = 8
)

// apiIdentity authenticates a thread-route request as /ws does (bearer
// header or ?token=); on failure it answers 401 and returns false.
func (s *Server) apiIdentity(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	id, err := s.deps.Auth.Authenticate(r)
	if err != nil {
		s.log.Debug("api authentication failed", "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dashstream"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid credentials")
		return auth.Identity{}, false
	}
	return id, true
}

// threadsAvailable answers 501 when no run index is wired.
func (s *Server) threadsAvailable(w http.ResponseWriter) bool {
	if s.deps.Threads == nil {
		writeError(w, http.StatusNotImplemented, "thread index not available")
		return false
	}
	return true
}

// runJSON is one thread of GET /api/threads.
type runJSON struct {
	ThreadID         string        `json:"thread_id"`
	GraphName        string        `json:"graph_name"`
	Status           string        `json:"status"`
	FirstTimestamp   *string       `json:"first_timestamp"`
	LastTimestamp    *string       `json:"last_timestamp"`
	FirstTimestampUs int64         `json:"first_timestamp_us"`
	LastTimestampUs  int64         `json:"last_timestamp_us"`
	RecordCount      int           `json:"record_count"`
	LatestFullState  *positionJSON `json:"latest_full_state"`
}

// positionJSON is a record's position; 64-bit numbers as strings, as in
// the WebSocket protocol.
type positionJSON struct {
	Partition int32  `json:"partition"`
	Offset    string `json:"offset"`
	Sequence  string `json:"sequence"`
}

// listThreads serves GET /api/threads: the run index, filtered by status,
// graph_name and since, paged by cursor.
func (s *Server) listThreads(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiIdentity(w, r)
	if !ok || !s.threadsAvailable(w) {
		return
	}
	q, err := runQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q.Tenant, q.Restricted = id.Tenant, id.Tenant != ""
	runs, more := s.deps.Threads.Runs(q)
	out := struct {
		Threads []runJSON `json:"threads"`
		Next    *string   `json:"next"`
	}{Threads: make([]runJSON, 0, len(runs))}
	for _, run := range runs {
		out.Threads = append(out.Threads, toRunJSON(run))
	}
	if more && len(runs) > 0 {
		next := base64.RawURLEncoding.EncodeToString([]byte(runs[len(runs)-1].Thread))
		out.Next = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// runQuery reads the query parameters of GET /api/threads.
func runQuery(r *http.Request) (replay.RunQuery, error) {
	v := r.URL.Query()
	q := replay.RunQuery{Status: v.Get("status"), GraphName: v.Get("graph_name")}
	switch q.Status {
	case "", replay.RunRunning, replay.RunCompleted, replay.RunFailed:
	default:
		return q, errors.New("status must be running, completed or failed")
	}
	var err error
	if q.Limit, err = pageLimit(v.Get("limit")); err != nil {
		return q, err
	}
	if s := v.Get("since"); s != "" {
		if q.SinceUs, err = parseSince(s); err != nil {
			return q, err
		}
	}
	if c := v.Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return q, errors.New("cursor is not one this endpoint returned")
		}
		q.After = string(after)
	}
	return q, nil
}

// pageLimit parses limit: 1 to maxThreadPage, defaultThreadPage when empty.
func pageLimit(s string) (int, error) {
	if s == "" {
		return defaultThreadPage, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxThreadPage {
		return 0, errors.New("limit must be an integer from 1 to " + strconv.Itoa(maxThreadPage))
	}
	return n, nil
}

// parseSince reads an RFC 3339 time or Unix milliseconds, as µs.
func parseSince(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 && ms < 1<<53 {
		return ms * 1000, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, errors.New("since must be an RFC 3339 time or Unix milliseconds")
	}
	return t.UnixMicro(), nil
}

func toRunJSON(run replay.Run) runJSON {
	out := runJSON{ThreadID: run.Thread, GraphName: run.GraphName, Status: run.Status,
		FirstTimestamp: timestamp(run.FirstUs), LastTimestamp: timestamp(run.LastUs),
		FirstTimestampUs: run.FirstUs, LastTimestampUs: run.LastUs, RecordCount: run.Records}
	if f := run.FullState; f != nil {
		out.LatestFullState = &positionJSON{Partition: f.Partition, Offset: strconv.FormatInt(f.Offset, 10),
			Sequence: strconv.FormatUint(f.Sequence, 10)}
	}
	return out
}

// timestamp is an RFC 3339 time (µs) of a producer timestamp, nil when absent.
func timestamp(us int64) *string {
	if us <= 0 {
		return nil
	}
	s := time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
	return &s
}
