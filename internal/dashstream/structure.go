package dashstream

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// DefaultMaxElements bounds the nested messages (events, attributes, diff
// operations, map entries …) of one record. Byte caps alone do not bound
// memory: an EventBatch of 10 MiB of empty events (2 bytes each) would make
// the protobuf library allocate ~1 GiB, and zstd shrinks such a payload to a
// kilobyte. Real records carry hundreds to a few thousand elements.
const DefaultMaxElements = 100_000

var (
	errTooManyElements = errors.New("too many nested messages")
	errMalformed       = errors.New("malformed wire data")
	rootDescriptor     = (&dashstreampb.DashStreamMessage{}).ProtoReflect().Descriptor()
)

// checkStructure walks the wire bytes without allocating and fails when the
// message holds more than limit nested messages. Malformed bytes are left to
// proto.Unmarshal to classify (it reports them precisely).
func checkStructure(b []byte, limit int) error {
	budget := limit
	err := walk(b, rootDescriptor, &budget, 0)
	if errors.Is(err, errMalformed) {
		return nil
	}
	return err
}

// walk counts the message-typed fields of b (described by md), recursively.
func walk(b []byte, md protoreflect.MessageDescriptor, budget *int, depth int) error {
	if depth > 64 {
		return errMalformed // proto.Unmarshal rejects excessive nesting itself
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errMalformed
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if err := walkField(v, fields.ByNumber(num), budget, depth); err != nil {
			return err
		}
	}
	return nil
}

func walkField(v []byte, fd protoreflect.FieldDescriptor, budget *int, depth int) error {
	if fd == nil || fd.Kind() != protoreflect.MessageKind {
		return nil // scalars, strings, bytes, packed repeated: bounded by their bytes
	}
	if *budget--; *budget < 0 {
		return errTooManyElements
	}
	return walk(v, fd.Message(), budget, depth+1)
}
