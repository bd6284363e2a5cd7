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
func ParseTraceparent(v string) (trace.SpanContext, bool) {
	const size = 55 // 2+1+32+1+16+1+2
	if len(v) < size || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return trace.SpanContext{}, false
	}
	version, flags := v[:2], v[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(flags) || !lowerHex(v[3:35]) || !lowerHex(v[36:52]) {
		return trace.SpanContext{}, false
	}
	if (version == "00" && len(v) != size) || (len(v) > size && v[size] != '-') {
		return trace.SpanContext{}, false
	}
	tid, err := trace.TraceIDFromHex(v[3:35])
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(v[36:52])
	if err != nil {
		return trace.SpanContext{}, false
	}
	var f trace.TraceFlags
	if hexDigit(flags[1])&1 == 1 {
		f = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: f, Remote: true}), true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hexDigit(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// Links gathers the producer span contexts of a batch's records as span
// links, at most MaxLinks; the zero value is ready to use.
type Links struct {
	links   []trace.Link
	dropped int
}

// Add links the span context of one record's traceparent header value; a
// missing or malformed value adds nothing.
func (l *Links) Add(traceparent []byte) {
	if len(traceparent) == 0 {
		return
	}
	sc, ok := ParseTraceparent(string(traceparent))
	if !ok {
		return
	}
	if len(l.links) == MaxLinks {
		l.dropped++
		return
	}
	l.links = append(l.links, trace.Link{SpanContext: sc})
}

// Links returns the links gathered.
func (l *Links) Links() []trace.Link { return l.links }

// Dropped is the attribute counting the producer contexts beyond MaxLinks.
func (l *Links) Dropped() attribute.KeyValue {
	return attribute.Int("dashstream.links_dropped", l.dropped)
}
