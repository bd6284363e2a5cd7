package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

func (s *Server) listSchemas(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.schemas.List())
}

// graphName reads and validates the {graph_name} path value; it answers 400
// and returns false when it is invalid.
func graphName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("graph_name")
	if !validGraphName(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("graph_name must be 1..%d bytes of printable UTF-8", maxGraphNameBytes))
		return "", false
	}
	return name, true
}

func (s *Server) getSchema(w http.ResponseWriter, r *http.Request) {
	name, ok := graphName(w, r)
	if !ok {
		return
	}
	e, found := s.schemas.Get(name)
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "No expected schema set for this graph", "graph_name": name})
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) putSchema(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, false) {
		return
	}
	name, ok := graphName(w, r)
	if !ok {
		return
	}
	pin, code, msg := readPin(w, r)
	if code != 0 {
		writeError(w, code, msg)
		return
	}
	e, err := s.schemas.Put(name, pin)
	if err != nil {
		s.schemaWriteFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) deleteSchema(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, false) {
		return
	}
	name, ok := graphName(w, r)
	if !ok {
		return
	}
	e, found, err := s.schemas.Delete(name)
	switch {
	case err != nil:
		s.schemaWriteFailed(w, err)
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "No expected schema to delete", "graph_name": name})
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

func (s *Server) schemaWriteFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrTooManySchemas) {
		writeError(w, http.StatusInsufficientStorage, "too many pinned schemas")
		return
	}
	s.log.Error("expected schema not saved", "err", err)
	writeError(w, http.StatusInternalServerError, "could not save the expected schema")
}

// readPin parses a PUT body. On failure it returns the status code (415 not
// JSON, 413 too large, 400 bad JSON, 422 invalid fields) and a message.
func readPin(w http.ResponseWriter, r *http.Request) (SchemaPin, int, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return SchemaPin{}, http.StatusUnsupportedMediaType, "Content-Type must be application/json"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return SchemaPin{}, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxJSONBody)
		}
		return SchemaPin{}, http.StatusBadRequest, "could not read the body"
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return SchemaPin{}, http.StatusBadRequest, "body must be a JSON object"
	}
	return pinFromFields(fields)
}

// pinFromFields checks types and bounds: schema_id a non-empty string,
// optionals a string or null.
func pinFromFields(f map[string]json.RawMessage) (SchemaPin, int, string) {
	var pin SchemaPin
	id, err := optionalString(f["schema_id"], maxSchemaIDBytes)
	if err != nil || id == nil || *id == "" {
		return pin, http.StatusUnprocessableEntity, "schema_id (non-empty string) is required"
	}
	pin.SchemaID = *id
	for name, dst := range map[string]**string{"environment": &pin.Environment, "pinned_by": &pin.PinnedBy, "note": &pin.Note} {
		v, err := optionalString(f[name], maxOptionalBytes)
		if err != nil {
			return pin, http.StatusUnprocessableEntity, name + ": " + err.Error()
		}
		*dst = v
	}
	return pin, 0, ""
}

// optionalString decodes a JSON string or null (nil) of at most max bytes.
func optionalString(raw json.RawMessage, limit int) (*string, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("must be a string or null")
	}
	if len(s) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	return &s, nil
}
