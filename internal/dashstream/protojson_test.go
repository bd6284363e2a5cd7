package dashstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// TestProtoJSONManifest: the canonical JSON of every valid test vector (zstd
// frames and legacy values included), read back field by field through the
// schema, is the vector's `decoded` tree of the manifest (which an
// independent decoder produced).
func TestProtoJSONManifest(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	checked := 0
	for _, v := range loadManifest(t) {
		if !v.Valid || len(v.Decoded) == 0 {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			out, err := dec.ProtoJSON(vectorValue(t, v))
			if err != nil {
				t.Fatal(err)
			}
			var tree map[string]any
			if err := json.Unmarshal(out, &tree); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			got := fromProtoJSON(t, tree, (&pb.DashStreamMessage{}).ProtoReflect().Descriptor())
			if !jsonEqual(t, got, v.Decoded) {
				t.Errorf("JSON differs from the manifest\n got: %s\nwant: %s", out, v.Decoded)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, out); err != nil || !bytes.Equal(compact.Bytes(), out) {
				t.Errorf("output is not compact: %s", out)
			}
		})
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d vectors carry a decoded tree", checked)
	}
}

// TestProtoJSONSamples: every message type round-trips through its JSON,
// 64-bit integers are strings, names are lowerCamelCase, and the bytes are
// the same on every call (protojson's spacing is randomized).
func TestProtoJSONSamples(t *testing.T) {
	dec := NewDecoder(DecoderConfig{})
	for name, msg := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			v, err := Encode(msg, FramingZstd)
			if err != nil {
				t.Fatal(err)
			}
			out, err := dec.ProtoJSON(v)
			if err != nil {
				t.Fatal(err)
			}
			back := new(pb.DashStreamMessage)
			if err := protojson.Unmarshal(out, back); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			assertProtoEqual(t, back, msg)
			for range 5 {
				if again, _ := dec.ProtoJSON(v); !bytes.Equal(again, out) {
					t.Fatalf("unstable output:\n%s\n%s", out, again)
				}
			}
			if name != "none" && !bytes.Contains(out, []byte(`"timestampUs":"1764158400000123"`)) {
				t.Errorf("timestamp not an exact string in camelCase: %s", out)
			}
		})
	}
	d, err := dec.Decode(mustEncode(t, sampleMessages()["event"], FramingPlain))
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.AppendProtoJSON([]byte(`{"message":`))
	if err != nil || !bytes.HasPrefix(out, []byte(`{"message":{"event":{`)) {
		t.Fatalf("AppendProtoJSON does not append: %s %v", out, err)
	}
	if _, err := dec.ProtoJSON([]byte{0x01, 0xff}); err == nil {
		t.Fatal("bad zstd gave JSON")
	}
}

// fromProtoJSON rewrites a canonical-JSON tree in the manifest's notation,
// guided by the schema: proto field names, enums as numbers, bytes as hex
// (or {len, sha256}), float fields at float32 precision.
func fromProtoJSON(t *testing.T, obj map[string]any, md protoreflect.MessageDescriptor) map[string]any {
	t.Helper()
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			t.Fatalf("%s: no field with JSON name %q", md.FullName(), k)
		}
		out[string(fd.Name())] = fromJSONField(t, fd, v)
	}
	return out
}

func fromJSONField(t *testing.T, fd protoreflect.FieldDescriptor, v any) any {
	switch {
	case fd.IsMap():
		m := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = fromJSONScalar(t, fd.MapValue(), e)
		}
		return out
	case fd.IsList():
		l := v.([]any)
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = fromJSONScalar(t, fd, e)
		}
		return out
	}
	return fromJSONScalar(t, fd, v)
}

func fromJSONScalar(t *testing.T, fd protoreflect.FieldDescriptor, v any) any {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return fromProtoJSON(t, v.(map[string]any), fd.Message())
	case protoreflect.EnumKind:
		if name, ok := v.(string); ok {
			ev := fd.Enum().Values().ByName(protoreflect.Name(name))
			if ev == nil {
				t.Fatalf("%s: unknown enum name %q", fd.FullName(), name)
			}
			return int32(ev.Number())
		}
		return v
	case protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.Sint64Kind,
		protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		if _, ok := v.(string); !ok {
			t.Fatalf("%s: 64-bit integer %v is not a string", fd.FullName(), v)
		}
		return v
	case protoreflect.FloatKind:
		if f, ok := v.(float64); ok {
			return float64(float32(f))
		}
		return v
	case protoreflect.BytesKind:
		s := v.(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || strings.ContainsAny(s, "-_") {
			t.Fatalf("%s: bytes %q are not standard base64", fd.FullName(), s)
		}
		return renderBytes(b)
	}
	return v
}

// BenchmarkProtoJSON measures the once-per-record JSON encoding of a
// decoded message (the decode excluded).
func BenchmarkProtoJSON(b *testing.B) {
	dec := NewDecoder(DecoderConfig{})
	for _, name := range []string{"event", "state_diff", "event_batch"} {
		v, err := Encode(sampleMessages()[name], FramingPlain)
		if err != nil {
			b.Fatal(err)
		}
		d, err := dec.Decode(v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			var buf []byte
			for b.Loop() {
				buf, _ = d.AppendProtoJSON(buf[:0])
			}
		})
	}
}
