package dashstream

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// singleSegmentMax is the largest input compressed as a single-segment zstd
// frame. klauspost's EncodeAll omits Frame_Content_Size below 256 bytes unless
// single-segment mode is forced, and the reference dashboard rejects frames
// without it. Larger inputs always get a content size field anyway.
const singleSegmentMax = 8 << 20

// encoders are created on first use and are safe for concurrent EncodeAll:
// callers cannot observe or change their state.
var encoders = sync.OnceValues(newEncoders)

type zstdEncoders struct {
	single *zstd.Encoder // inputs up to singleSegmentMax
	large  *zstd.Encoder
}

func newEncoders() (zstdEncoders, error) {
	// Zero frames: an empty message still gets a (content size 0) frame.
	single, err := zstd.NewWriter(nil, zstd.WithSingleSegment(true), zstd.WithZeroFrames(true),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return zstdEncoders{}, err
	}
	large, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return zstdEncoders{}, err
	}
	return zstdEncoders{single: single, large: large}, nil
}

var errNoContentSize = errors.New("zstd frame does not declare its content size")

// Encode marshals msg (deterministically: map entries sorted) and frames it
// as f. Explicit zeros in DiffOperation.op/encoding are kept because those
// fields are optional. Zstd framings produce one frame that declares its
// content size. It is meant for demos and tests; the gateway itself forwards
// record values unchanged.
func Encode(msg *dashstreampb.DashStreamMessage, f Framing) ([]byte, error) {
	opts := proto.MarshalOptions{Deterministic: true}
	switch f {
	case FramingPlain:
		out := make([]byte, 1, 1+opts.Size(msg))
		return marshalAppend(opts, out, msg)
	case FramingLegacyRaw:
		return legacyRaw(opts, msg)
	case FramingZstd, FramingLegacyZstd:
		pb, err := marshalAppend(opts, nil, msg)
		if err != nil {
			return nil, err
		}
		return compress(pb, f)
	}
	return nil, fmt.Errorf("dashstream: encode: unknown framing %d", uint8(f))
}

var errLegacyRawAmbiguous = errors.New("message cannot be sent unframed: it is empty or its first bytes read as a framing flag or the zstd magic")

// legacyRaw marshals msg without a framing byte, refusing what a decoder would
// read back differently: an empty value, or one that looks framed or zstd.
func legacyRaw(opts proto.MarshalOptions, msg *dashstreampb.DashStreamMessage) ([]byte, error) {
	out, err := marshalAppend(opts, nil, msg)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 || out[0] == flagPlain || out[0] == flagZstd || bytes.HasPrefix(out, zstdMagic) {
		return nil, fmt.Errorf("dashstream: encode: %w", errLegacyRawAmbiguous)
	}
	return out, nil
}

func marshalAppend(opts proto.MarshalOptions, dst []byte, msg *dashstreampb.DashStreamMessage) ([]byte, error) {
	out, err := opts.MarshalAppend(dst, msg)
	if err != nil {
		return nil, fmt.Errorf("dashstream: encode: %w", err)
	}
	return out, nil
}

// compress wraps pb in one zstd frame, behind the 0x01 flag for FramingZstd.
func compress(pb []byte, f Framing) ([]byte, error) {
	enc, err := encoders()
	if err != nil {
		return nil, fmt.Errorf("dashstream: encode: zstd: %w", err)
	}
	z := enc.large
	if len(pb) <= singleSegmentMax {
		z = enc.single
	}
	var prefix []byte
	if f == FramingZstd {
		prefix = []byte{flagZstd}
	}
	out := z.EncodeAll(pb, prefix)
	if err := checkContentSize(out[len(prefix):], len(pb)); err != nil {
		return nil, fmt.Errorf("dashstream: encode: %w", err)
	}
	return out, nil
}

// checkContentSize verifies that frame declares exactly want content bytes.
func checkContentSize(frame []byte, want int) error {
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		return err
	}
	if !h.HasFCS {
		return errNoContentSize
	}
	if h.FrameContentSize != uint64(want) {
		return fmt.Errorf("zstd frame declares %d bytes, wrote %d", h.FrameContentSize, want)
	}
	return nil
}
