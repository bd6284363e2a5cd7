package httpserver

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/dashflow/dashstream-gateway/internal/auth"
	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// recordJSON is one record of GET /api/threads/{thread_id}/records: the
// value as base64, or with format=json the decoded message in protobuf's
// canonical JSON mapping (docs/PROTOCOL.md §3.8).
type recordJSON struct {
	Partition   int32           `json:"partition"`
	Offset      string          `json:"offset"`
	Sequences   []string        `json:"sequences"`
	TimestampUs int64           `json:"timestamp_us"`
	Value       string          `json:"value,omitempty"`
	Message     json.RawMessage `json:"message,omitempty"`
}

// threadRecords serves GET /api/threads/{thread_id}/records: the thread's
// records after after_sequence in sequence order, from every replay tier,
// limit per page, with next (the after_sequence of the next page; null at
// the end). A tenant-bound token gets only its tenant's records; the page
// cursor still moves over the others.
func (s *Server) threadRecords(w http.ResponseWriter, r *http.Request) {
	id, ok := s.apiIdentity(w, r)
	if !ok || !s.threadsAvailable(w) {
		return
	}
	thread, after, limit, asJSON, err := recordsQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	select {
	case s.historyReads <- struct{}{}:
		defer func() { <-s.historyReads }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many history reads at once, retry later")
		return
	}
	h, err := s.deps.Threads.ThreadHistory(r.Context(), thread, after, limit)
	if err != nil {
		s.historyFailed(w, err)
		return
	}
	out := struct {
		ThreadID string       `json:"thread_id"`
		Records  []recordJSON `json:"records"`
		Next     *string      `json:"next"`
	}{ThreadID: thread, Records: make([]recordJSON, 0, len(h.Records))}
	for _, tr := range h.Records {
		if visible(id, tr.Record) {
			out.Records = append(out.Records, s.toRecordJSON(tr, asJSON))
		}
	}
	if h.More {
		next := strconv.FormatUint(h.Next, 10)
		out.Next = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// visible applies the tenant restriction of /ws: a tenant-bound client
// sees only its tenant's records.
func visible(id auth.Identity, r *replay.Record) bool {
	return id.Tenant == "" || r.Tenant == id.Tenant
}

func (s *Server) historyFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, replay.ErrUnavailable) {
		s.log.Debug("thread history unavailable", "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "replay tiers unavailable, retry later",
			"code": "REPLAY_UNAVAILABLE"})
		return
	}
	s.log.Error("thread history failed", "err", err)
	writeError(w, http.StatusInternalServerError, "thread history failed")
}

// recordsQuery reads the path and query of the records route.
func recordsQuery(r *http.Request) (thread string, after uint64, limit int, asJSON bool, err error) {
	thread = r.PathValue("thread_id")
	if len(thread) > maxThreadIDBytes {
		return "", 0, 0, false, errors.New("thread_id too long")
	}
	v := r.URL.Query()
	if a := v.Get("after_sequence"); a != "" {
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			return "", 0, 0, false, errors.New("after_sequence must be an unsigned integer")
		}
	}
	if limit, err = pageLimit(v.Get("limit")); err != nil {
		return "", 0, 0, false, err
	}
	switch v.Get("format") {
	case "", "base64":
	case "json":
		asJSON = true
	default:
		return "", 0, 0, false, errors.New("format must be json or base64")
	}
	return thread, after, limit, asJSON, nil
}

func (s *Server) toRecordJSON(tr replay.ThreadRecord, asJSON bool) recordJSON {
	r := tr.Record
	out := recordJSON{Partition: r.Partition, Offset: strconv.FormatInt(r.Offset, 10), TimestampUs: r.TimestampUs}
	for _, seq := range tr.Sequences {
		out.Sequences = append(out.Sequences, strconv.FormatUint(seq, 10))
	}
	if asJSON {
		if msg, err := s.decoder.ProtoJSON(r.Value); err == nil {
			out.Message = msg
			return out
		}
		// The record decoded when it was consumed, so this cannot happen
		// short of a changed payload cap; the bytes still go out.
	}
	out.Value = base64.StdEncoding.EncodeToString(r.Value)
	return out
}

// defaultDecoder decodes records for format=json when Deps.Decoder is nil.
func defaultDecoder() *dashstream.Decoder { return dashstream.NewDecoder(dashstream.DecoderConfig{}) }
