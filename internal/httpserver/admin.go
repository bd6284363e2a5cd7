package httpserver

import (
	"errors"
	"net/http"
	"strconv"
)

// clearReplay empties the replay store (POST /api/admin/replay/clear).
func (s *Server) clearReplay(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, true) {
		return
	}
	if s.deps.ClearReplay == nil {
		writeError(w, http.StatusNotImplemented, "replay clear not available")
		return
	}
	if err := s.deps.ClearReplay(r.Context()); err != nil {
		s.log.Error("admin replay clear failed", "err", err)
		writeError(w, http.StatusInternalServerError, "replay clear failed")
		return
	}
	s.log.Info("admin cleared the replay store")
	writeJSON(w, http.StatusOK, map[string]bool{"cleared": true})
}

// resumePartition resumes a paused partition
// (POST /api/admin/partitions/{partition}/resume).
func (s *Server) resumePartition(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, true) {
		return
	}
	p, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil || p < 0 {
		writeError(w, http.StatusBadRequest, "partition must be a non-negative integer")
		return
	}
	if s.deps.ResumePartition == nil {
		writeError(w, http.StatusNotImplemented, "partition resume not available")
		return
	}
	if err := s.deps.ResumePartition(r.Context(), int32(p)); err != nil {
		s.resumeFailed(w, int32(p), err)
		return
	}
	s.log.Info("admin resumed partition", "partition", p)
	writeJSON(w, http.StatusOK, map[string]any{"resumed": true, "partition": p})
}

func (s *Server) resumeFailed(w http.ResponseWriter, p int32, err error) {
	switch {
	case errors.Is(err, ErrNotPaused):
		writeJSON(w, http.StatusConflict, map[string]any{"error": "partition is not paused", "partition": p})
	case errors.Is(err, ErrUnknownPartition):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown partition", "partition": p})
	default:
		s.log.Error("admin partition resume failed", "partition", p, "err", err)
		writeError(w, http.StatusInternalServerError, "partition resume failed")
	}
}
