package tracing

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// MaxLinks bounds the links of one span: a poll of thousands of records
// links to the first MaxLinks producer spans and counts the rest.
const MaxLinks = 128

// Header names of the W3C trace context.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// ParseTraceparent returns the remote span context of a W3C traceparent
// value ("<version>-<trace id>-<parent id>-<flags>", lower-case hex), and
// false when it is malformed, of version ff, or names an all-zero id. A
// future version may append "-" and more fields.
func ParseTraceparent(v string) (trace.SpanContext, bool) { return parseTraceparent(v) }

// parseTraceparent is ParseTraceparent on a header's bytes or a string,
// without allocating.
func parseTraceparent[T ~string | ~[]byte](v T) (trace.SpanContext, bool) {
	const size = 55 // 2+1+32+1+16+1+2
	if len(v) < size || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return trace.SpanContext{}, false
	}
	var version, flags [1]byte
	var tid trace.TraceID
	var sid trace.SpanID
	if !unhex(version[:], v[0:2]) || version[0] == 0xff || !unhex(flags[:], v[53:55]) ||
		!unhex(tid[:], v[3:35]) || !unhex(sid[:], v[36:52]) || !tid.IsValid() || !sid.IsValid() {
		return trace.SpanContext{}, false
	}
	if (version[0] == 0 && len(v) != size) || (len(v) > size && v[size] != '-') {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true}), true
}

// unhex decodes lower-case hex src into dst (len(src) == 2*len(dst)).
func unhex[T ~string | ~[]byte](dst []byte, src T) bool {
	for i := range dst {
		hi, ok1 := nibble(src[2*i])
		lo, ok2 := nibble(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Links gathers the producer span contexts of a batch's records as span
// links, at most MaxLinks; the zero value is ready to use.
type Links struct {
	links   []trace.Link
	dropped int
}

// Add links the span context of one record's traceparent header value; a
// missing or malformed value adds nothing. Beyond MaxLinks a header is
// counted, not parsed.
func (l *Links) Add(traceparent []byte) {
	if len(traceparent) == 0 {
		return
	}
	if len(l.links) == MaxLinks {
		l.dropped++
		return
	}
	if sc, ok := parseTraceparent(traceparent); ok {
		if l.links == nil {
			l.links = make([]trace.Link, 0, MaxLinks)
		}
		l.links = append(l.links, trace.Link{SpanContext: sc})
	}
}

// Links returns the links gathered.
func (l *Links) Links() []trace.Link { return l.links }

// Dropped is the attribute counting the producer contexts beyond MaxLinks.
func (l *Links) Dropped() attribute.KeyValue {
	return attribute.Int("dashstream.links_dropped", l.dropped)
}
