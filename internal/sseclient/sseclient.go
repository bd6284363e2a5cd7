// Package sseclient reads the gateway's Server-Sent Events stream (GET /sse,
// docs/PROTOCOL.md §3.9) the way a browser's EventSource does: events are
// dispatched on a blank line, an id: field sets the last event id even
// when the block carries no data, comment lines are skipped. Tests and
// `dashstream bench --sse` use it; reconnecting is the caller's choice
// (Dial again with LastEventID).
package sseclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Event is one dispatched event.
type Event struct {
	Type string // "message" when the block named none
	ID   string // the last event id when it was dispatched
	Data []byte // valid until the next call of Next
}

// Stream is an open /sse response.
type Stream struct {
	resp *http.Response
	br   *bufio.Reader
	// LastEventID is what a browser would send as Last-Event-ID on its
	// reconnect: the id of the last whole block that carried one (a block
	// cut off by the connection's end does not count).
	LastEventID string
	// Comments counts comment lines (the gateway's heartbeats).
	Comments int
	// SkipIDs ignores id: lines (LastEventID and Event.ID stay as they
	// are): a reader that never resumes saves a string per event.
	SkipIDs bool

	data  []byte
	typ   []byte
	idBuf string // the last event id buffer: committed at a block's end
}

// ErrStatus is returned by Dial for a response other than 200.
type ErrStatus struct {
	Code int
	Body string
}

func (e *ErrStatus) Error() string { return fmt.Sprintf("sse: status %d: %s", e.Code, e.Body) }

// Dial opens url with client (nil: http.DefaultClient), sending
// lastEventID as Last-Event-ID when not empty and header's fields.
func Dial(ctx context.Context, client *http.Client, url, lastEventID string, header http.Header) (*Stream, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, &ErrStatus{Code: resp.StatusCode, Body: string(bytes.TrimSpace(body))}
	}
	return &Stream{resp: resp, br: bufio.NewReaderSize(resp.Body, 64<<10), LastEventID: lastEventID, idBuf: lastEventID}, nil
}

// NewStream reads events from r (a response body read elsewhere, a
// recorded stream), resuming the last event id from lastEventID.
func NewStream(r io.Reader, lastEventID string) *Stream {
	return &Stream{resp: &http.Response{Body: io.NopCloser(r), Header: http.Header{}},
		br: bufio.NewReaderSize(r, 64<<10), LastEventID: lastEventID, idBuf: lastEventID}
}

// Header is the response's header.
func (s *Stream) Header() http.Header { return s.resp.Header }

// Close ends the stream (the connection is not reused).
func (s *Stream) Close() error { return s.resp.Body.Close() }

// maxLine bounds one line of the stream.
const maxLine = 64 << 20

// Next returns the next dispatched event; io.EOF when the server ended
// the stream cleanly between events.
func (s *Stream) Next() (Event, error) {
	s.data, s.typ = s.data[:0], s.typ[:0]
	hasData := false
	var line []byte
	for {
		var err error
		line, err = s.readLine(line[:0])
		if err != nil {
			if errors.Is(err, io.EOF) && (len(line) > 0 || hasData) {
				err = io.ErrUnexpectedEOF // a block cut off: not dispatched
			}
			return Event{}, err
		}
		if len(line) == 0 {
			s.LastEventID = s.idBuf // also for a block without data
			if !hasData {
				s.typ = s.typ[:0]
				continue
			}
			return Event{Type: eventType(s.typ), ID: s.LastEventID, Data: s.data}, nil
		}
		if line[0] == ':' {
			s.Comments++
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			s.typ = append(s.typ[:0], value...)
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
		case "id":
			if !s.SkipIDs && bytes.IndexByte(value, 0) < 0 {
				s.idBuf = string(value)
			}
		}
	}
}

// eventType names an event's type without allocating for the gateway's.
func eventType(t []byte) string {
	switch string(t) {
	case "":
		return "message"
	case "record":
		return "record"
	case "replay_complete":
		return "replay_complete"
	}
	return string(t)
}

// readLine reads one line without its terminator (LF or CRLF: the
// gateway writes LF). A line that fits the reader's buffer is returned
// in place, valid until the next read; a longer one is gathered in dst.
func (s *Stream) readLine(dst []byte) ([]byte, error) {
	chunk, err := s.br.ReadSlice('\n')
	if err == nil {
		return bytes.TrimSuffix(chunk[:len(chunk)-1], []byte("\r")), nil
	}
	dst = append(dst, chunk...)
	if !errors.Is(err, bufio.ErrBufferFull) {
		return dst, err
	}
	for {
		chunk, err := s.br.ReadSlice('\n')
		dst = append(dst, chunk...)
		if len(dst) > maxLine {
			return nil, errors.New("sse: line too long")
		}
		if err == nil {
			dst = dst[:len(dst)-1]
			return bytes.TrimSuffix(dst, []byte("\r")), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return dst, err
		}
	}
}
