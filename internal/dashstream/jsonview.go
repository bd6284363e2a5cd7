package dashstream

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// BytesInlineMax is the longest bytes field RenderJSON shows as hex; longer
// ones are summarized as {"len", "sha256"}.
const BytesInlineMax = 1024

// RenderJSON returns the message as a tree ready for encoding/json, following
// the test-vector manifest's `decoded` rules: keys are proto field names and
// appear only for fields present in the message (explicit zeros of optional
// and oneof fields included), 64-bit integers are decimal strings, 32-bit
// integers and enums numbers, floats numbers (a float holds its exact float32
// value), bytes lowercase hex (or {len, sha256} above BytesInlineMax), maps
// objects and repeated fields arrays; empty maps and lists are omitted.
// Unknown fields are not shown.
func RenderJSON(d *Decoded) (map[string]any, error) {
	return renderMessage(d.Message.ProtoReflect()), nil
}

func renderMessage(m protoreflect.Message) map[string]any {
	out := make(map[string]any)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[string(fd.Name())] = renderField(fd, v)
		return true
	})
	return out
}

func renderField(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsMap():
		return renderMap(fd.MapValue(), v.Map())
	case fd.IsList():
		return renderList(fd, v.List())
	}
	return renderScalar(fd, v)
}

func renderMap(vd protoreflect.FieldDescriptor, m protoreflect.Map) map[string]any {
	out := make(map[string]any, m.Len())
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		out[k.String()] = renderScalar(vd, v)
		return true
	})
	return out
}

func renderList(fd protoreflect.FieldDescriptor, l protoreflect.List) []any {
	out := make([]any, l.Len())
	for i := range out {
		out[i] = renderScalar(fd, l.Get(i))
	}
	return out
}

// renderScalar renders one singular value (a message counts as one).
func renderScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return renderMessage(v.Message())
	case protoreflect.EnumKind:
		return int32(v.Enum())
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return renderFloat(v.Float())
	case protoreflect.BytesKind:
		return renderBytes(v.Bytes())
	}
	return v.Interface() // bool, string, int32, uint32 kinds
}

// renderFloat keeps finite values as numbers; JSON has no NaN or infinities,
// so those become the protobuf JSON mapping's strings.
func renderFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

func renderBytes(b []byte) any {
	if len(b) <= BytesInlineMax {
		return hex.EncodeToString(b)
	}
	sum := sha256.Sum256(b)
	return map[string]any{"len": len(b), "sha256": hex.EncodeToString(sum[:])}
}
