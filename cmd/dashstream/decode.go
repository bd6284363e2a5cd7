package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/dashstream"
	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

var decodeHelp = helpText{
	name:    "decode",
	args:    "[flags] FILE...",
	summary: "Decode captured DashStream record values the way the gateway does.",
	about: `Decodes record values (one per file, "-" for stdin) and prints what they
hold, or why the gateway would dead-letter them.
Exit status: 0 when every input is valid, 1 when any is not, 2 on a usage
error.`,
	examples: []string{
		"dashstream decode record.bin",
		"dashstream decode --json testdata/dashstream/*.bin",
		"dashstream decode - < captured-value.bin",
	},
}

// readErrorKind marks an input that could not be read at all (not a §2.6 kind).
const readErrorKind = "read_error"

// runDecode implements `dashstream decode`.
func runDecode(args []string, e env) int {
	fs := newFlagSet(&decodeHelp)
	asJSON := fs.Bool("json", false, "print one JSON object per input")
	maxPayload := fs.Int("max-payload", dashstream.DefaultMaxPayload, "payload cap in bytes (after framing byte and decompression)")
	if code := fs.parse(args, e, -1); code >= 0 {
		return code
	}
	switch {
	case fs.NArg() == 0:
		return decodeHelp.usageError(e.stderr, "no input files")
	case *maxPayload < 1:
		return decodeHelp.usageError(e.stderr, "--max-payload %d: must be >= 1", *maxPayload)
	}
	d := decodeCmd{
		dec: dashstream.NewDecoder(dashstream.DecoderConfig{MaxPayload: *maxPayload}),
		max: *maxPayload, json: *asJSON, stdin: e.stdin, out: e.stdout,
	}
	return d.run(fs.Args())
}

type decodeCmd struct {
	dec   *dashstream.Decoder
	max   int
	json  bool
	stdin io.Reader
	out   io.Writer
}

// decodeResult is the outcome for one input.
type decodeResult struct {
	file    string
	decoded *dashstream.Decoded
	kind    string // failure kind; empty when valid
	err     error
}

func (c decodeCmd) run(files []string) int {
	status := 0
	for _, name := range files {
		r := c.decodeFile(name)
		if r.err != nil {
			status = 1
		}
		var err error
		if c.json {
			err = writeJSONResult(c.out, r)
		} else {
			err = writeTextResult(c.out, r)
		}
		if err != nil {
			return 1 // stdout is gone; nothing more can be reported
		}
	}
	return status
}

func (c decodeCmd) decodeFile(name string) decodeResult {
	value, err := c.readValue(name)
	if err != nil {
		return decodeResult{file: name, kind: readErrorKind, err: err}
	}
	if len(value) > c.max+1 { // the read stopped at the bound: the size is unknown
		return decodeResult{file: name, kind: dashstream.KindPayloadTooLarge.String(),
			err: &dashstream.DecodeError{Kind: dashstream.KindPayloadTooLarge, Err: fmt.Errorf("value is over %d bytes", c.max+1)}}
	}
	d, err := c.dec.Decode(value)
	if err != nil {
		var de *dashstream.DecodeError
		errors.As(err, &de)
		return decodeResult{file: name, kind: de.Kind.String(), err: err}
	}
	return decodeResult{file: name, decoded: d}
}

// readValue reads one input, at most max+2 bytes: enough for the decoder to
// see that an over-size value is too large without reading all of it.
func (c decodeCmd) readValue(name string) ([]byte, error) {
	r := c.stdin
	if name != "-" {
		f, err := os.Open(name) //nolint:gosec // G304: a file the user named on the command line
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	value, err := io.ReadAll(io.LimitReader(r, int64(c.max)+2))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return value, nil
}

// jsonInvalid and jsonValid are the --json lines; field order is output order.
type jsonInvalid struct {
	File      string `json:"file"`
	Valid     bool   `json:"valid"`
	ErrorKind string `json:"error_kind"`
	Error     string `json:"error"`
}

type jsonValid struct {
	File        string         `json:"file"`
	Valid       bool           `json:"valid"`
	Framing     string         `json:"framing"`
	MessageType string         `json:"message_type"`
	Header      *jsonHeader    `json:"header,omitempty"`
	InnerEvents *[]jsonInner   `json:"inner_events,omitempty"` // batches only, even when empty
	Message     map[string]any `json:"message"`
}

type jsonHeader struct {
	MessageID     string `json:"message_id"`
	TimestampUs   string `json:"timestamp_us"`
	TenantID      string `json:"tenant_id"`
	ThreadID      string `json:"thread_id"`
	Sequence      string `json:"sequence"`
	Type          int32  `json:"type"`
	Compression   int32  `json:"compression"`
	SchemaVersion uint32 `json:"schema_version"`
}

type jsonInner struct {
	ThreadID string `json:"thread_id"`
	Sequence string `json:"sequence"`
}

func writeJSONResult(w io.Writer, r decodeResult) error {
	var out any = jsonInvalid{File: r.file, ErrorKind: r.kind, Error: fmt.Sprint(r.err)}
	if r.err == nil {
		v, err := newJSONValid(r.file, r.decoded)
		if err != nil {
			return err
		}
		out = v
	}
	line, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("decode: encode %s: %w", r.file, err)
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

func newJSONValid(file string, d *dashstream.Decoded) (*jsonValid, error) {
	tree, err := dashstream.RenderJSON(d)
	if err != nil {
		return nil, err
	}
	out := &jsonValid{File: file, Valid: true, Framing: d.Framing.String(), MessageType: d.MessageType(), Message: tree}
	if h := d.Header(); h != nil {
		out.Header = newJSONHeader(h)
	}
	if d.Message.GetEventBatch() != nil {
		inner := make([]jsonInner, len(d.Headers))
		for i, ref := range d.Headers {
			inner[i] = jsonInner{ThreadID: ref.ThreadID, Sequence: strconv.FormatUint(ref.Sequence, 10)}
		}
		out.InnerEvents = &inner
	}
	return out, nil
}

func newJSONHeader(h *pb.Header) *jsonHeader {
	return &jsonHeader{
		MessageID:     hex.EncodeToString(h.GetMessageId()),
		TimestampUs:   strconv.FormatInt(h.GetTimestampUs(), 10),
		TenantID:      h.GetTenantId(),
		ThreadID:      h.GetThreadId(),
		Sequence:      strconv.FormatUint(h.GetSequence(), 10),
		Type:          int32(h.GetType()),
		Compression:   int32(h.GetCompression()),
		SchemaVersion: dashstream.SchemaVersion(h),
	}
}

// writeTextResult prints a human-readable block for one input. Untrusted
// strings are bounded with TruncateID and quoted, so they cannot flood or
// drive the terminal.
func writeTextResult(w io.Writer, r decodeResult) error {
	var b strings.Builder
	if r.err != nil {
		fmt.Fprintf(&b, "%s: INVALID (%s)\n  %v\n", r.file, r.kind, r.err)
	} else {
		writeTextValid(&b, r.file, r.decoded)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTextValid(b *strings.Builder, file string, d *dashstream.Decoded) {
	fmt.Fprintf(b, "%s: valid %s, framing %s\n", file, d.MessageType(), d.Framing)
	if h := d.Header(); h != nil {
		writeTextHeader(b, "  ", h)
	}
	writeTextBody(b, d.Message)
}

func writeTextHeader(b *strings.Builder, indent string, h *pb.Header) {
	field(b, indent, "thread", quoteID(h.GetThreadId()))
	field(b, indent, "sequence", sequenceText(h.GetSequence()))
	field(b, indent, "time", time.UnixMicro(h.GetTimestampUs()).UTC().Format(time.RFC3339Nano))
	field(b, indent, "tenant", quoteID(h.GetTenantId()))
	field(b, indent, "message_id", hex.EncodeToString(h.GetMessageId()))
	field(b, indent, "schema", strconv.FormatUint(uint64(dashstream.SchemaVersion(h)), 10))
}

func field(b *strings.Builder, indent, name, value string) {
	fmt.Fprintf(b, "%s%-11s %s\n", indent, name+":", value)
}

func quoteID(s string) string {
	t := dashstream.TruncateID(s, dashstream.LogIDMax)
	if len(t) < len(s) {
		return strconv.Quote(t) + fmt.Sprintf(" (truncated, %d bytes)", len(s))
	}
	return strconv.Quote(t)
}

func sequenceText(seq uint64) string {
	if seq == 0 {
		return "absent"
	}
	return strconv.FormatUint(seq, 10)
}

// writeTextBody prints the key fields of each message type.
func writeTextBody(b *strings.Builder, m *pb.DashStreamMessage) {
	const in = "  "
	switch body := m.GetMessage().(type) {
	case *pb.DashStreamMessage_Event:
		writeTextEvent(b, in, body.Event)
	case *pb.DashStreamMessage_EventBatch:
		writeTextBatch(b, body.EventBatch)
	case *pb.DashStreamMessage_StateDiff:
		field(b, in, "operations", strconv.Itoa(len(body.StateDiff.GetOperations())))
		field(b, in, "full_state", byteCount(body.StateDiff.GetFullState()))
		field(b, in, "state_hash", hex.EncodeToString(body.StateDiff.GetStateHash()))
	case *pb.DashStreamMessage_TokenChunk:
		writeTextTokenChunk(b, in, body.TokenChunk)
	case *pb.DashStreamMessage_ToolExecution:
		field(b, in, "tool", quoteID(body.ToolExecution.GetToolName()))
		field(b, in, "stage", body.ToolExecution.GetStage().String())
		field(b, in, "call_id", quoteID(body.ToolExecution.GetCallId()))
	case *pb.DashStreamMessage_Checkpoint:
		field(b, in, "checkpoint", hex.EncodeToString(body.Checkpoint.GetCheckpointId()))
		field(b, in, "state", byteCount(body.Checkpoint.GetState()))
	case *pb.DashStreamMessage_Metrics:
		field(b, in, "scope", quoteID(body.Metrics.GetScope()))
		field(b, in, "metrics", strconv.Itoa(len(body.Metrics.GetMetrics())))
	case *pb.DashStreamMessage_Error:
		writeTextError(b, in, body.Error)
	case *pb.DashStreamMessage_ExecutionTrace:
		field(b, in, "execution", quoteID(body.ExecutionTrace.GetExecutionId()))
		field(b, in, "nodes", strconv.Itoa(len(body.ExecutionTrace.GetNodesExecuted())))
		field(b, in, "completed", strconv.FormatBool(body.ExecutionTrace.GetCompleted()))
	}
}

func writeTextEvent(b *strings.Builder, in string, ev *pb.Event) {
	field(b, in, "event", ev.GetEventType().String())
	if ev.GetNodeId() != "" {
		field(b, in, "node", quoteID(ev.GetNodeId()))
	}
	if ev.GetDurationUs() != 0 {
		field(b, in, "duration", (time.Duration(ev.GetDurationUs()) * time.Microsecond).String())
	}
	field(b, in, "attributes", strconv.Itoa(len(ev.GetAttributes())))
}

func writeTextBatch(b *strings.Builder, batch *pb.EventBatch) {
	field(b, "  ", "events", strconv.Itoa(len(batch.GetEvents())))
	for i, ev := range batch.GetEvents() {
		fmt.Fprintf(b, "  event[%d]:\n", i)
		if h := ev.GetHeader(); h != nil {
			writeTextHeader(b, "    ", h)
		}
		writeTextEvent(b, "    ", ev)
	}
}

func writeTextTokenChunk(b *strings.Builder, in string, tc *pb.TokenChunk) {
	field(b, in, "request_id", quoteID(tc.GetRequestId()))
	field(b, in, "chunk", strconv.FormatUint(uint64(tc.GetChunkIndex()), 10))
	field(b, in, "final", strconv.FormatBool(tc.GetIsFinal()))
	field(b, in, "text", quoteID(tc.GetText()))
}

func writeTextError(b *strings.Builder, in string, e *pb.Error) {
	field(b, in, "code", quoteID(e.GetErrorCode()))
	field(b, in, "severity", e.GetSeverity().String())
	field(b, in, "message", quoteID(e.GetMessage()))
}

func byteCount(b []byte) string {
	return strconv.Itoa(len(b)) + " bytes"
}
