package dashstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// minDecoderMemory keeps tiny caps usable: zstd itself needs a 1 KiB window
// for any frame. The payload cap is still enforced by the inflater itself.
const minDecoderMemory = 64 << 10

// inflater decompresses exactly one zstd frame into at most limit bytes
// without ever allocating more than that. It is safe for concurrent use.
//
// Frames that declare their content size (all well-behaved producers) are
// checked against the limit up front and decoded once, into a buffer of
// exactly that size. Frames without a declared size are first inflated into
// nothing while counting, with a window bounded by the cap; only when they
// fit are they decoded for real. Paying a second pass for that rare case is
// what keeps a decompression bomb from costing memory.
type inflater struct {
	limit   int
	memory  uint64        // decoder output bound: max(limit, minDecoderMemory)
	window  uint64        // largest accepted zstd window: min(memory, zstd.MaxWindowSize)
	all     *zstd.Decoder // DecodeAll mode: concurrency-safe, pools its block decoders
	streams sync.Pool     // *zstd.Decoder in synchronous streaming mode, for measuring
}

func newInflater(limit int) *inflater {
	memory := uint64(max(limit, minDecoderMemory))
	z := &inflater{limit: limit, memory: memory, window: min(memory, zstd.MaxWindowSize)}
	all, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(z.memory),
		zstd.WithDecoderMaxWindow(z.window))
	if err != nil {
		panic(fmt.Sprintf("dashstream: zstd decoder options: %v", err)) // options are constants
	}
	z.all = all
	z.streams.New = z.newStream
	return z
}

func (z *inflater) newStream() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1), // synchronous: no goroutines to leak
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(z.memory),
		zstd.WithDecoderMaxWindow(z.window),
		zstd.WithDecodeBuffersBelow(0))
	if err != nil {
		panic(fmt.Sprintf("dashstream: zstd stream decoder options: %v", err))
	}
	return d
}

// inflate returns the content of frame, which must be exactly one zstd frame.
func (z *inflater) inflate(frame []byte) ([]byte, *DecodeError) {
	var h zstd.Header
	if err := z.inspect(frame, &h); err != nil {
		return nil, err
	}
	if h.HasFCS {
		// nil: the zstd package sizes the buffer from the declared size, but
		// never beyond what the input can decode to (at most 32 KiB per input
		// byte), so a tiny frame that lies about its size costs little.
		return z.decodeAll(frame, nil)
	}
	n, err := z.measure(frame)
	if err != nil {
		return nil, err
	}
	return z.decodeAll(frame, make([]byte, 0, n))
}

// inspect validates the frame header and framing before any inflation:
// one frame, no dictionary, and a declared size (or window) within the cap.
func (z *inflater) inspect(frame []byte, h *zstd.Header) *DecodeError {
	if err := h.Decode(frame); err != nil {
		return decodeErrf(KindBadZstd, "frame header: %w", err)
	}
	switch {
	case h.Skippable:
		return decodeErrf(KindBadZstd, "skippable frame has no content")
	case h.DictionaryID != 0:
		return decodeErrf(KindBadZstd, "frame needs unknown dictionary %d", h.DictionaryID)
	case h.HasFCS && h.FrameContentSize > uint64(z.limit):
		return decodeErrf(KindDecompressedTooLarge, "frame declares %d bytes, cap is %d", h.FrameContentSize, z.limit)
	case !h.SingleSegment && h.WindowSize > z.window:
		return decodeErrf(KindDecompressedTooLarge, "frame window is %d bytes, cap is %d", h.WindowSize, z.window)
	}
	n, err := frameLength(frame, h)
	if err != nil {
		return decodeErr(KindBadZstd, err)
	}
	if n != len(frame) {
		return decodeErrf(KindBadZstd, "%d bytes of trailing data after the zstd frame", len(frame)-n)
	}
	return nil
}

// measure inflates a frame of undeclared size into nothing and returns its
// content size, failing as soon as it passes the cap.
func (z *inflater) measure(frame []byte) (int, *DecodeError) {
	d := z.streams.Get().(*zstd.Decoder)
	defer z.streams.Put(d)
	defer d.Reset(nil) //nolint:errcheck // releasing the input reference cannot fail
	if err := d.Reset(bytes.NewReader(frame)); err != nil {
		return 0, classifyZstd(err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(d, int64(z.limit)+1))
	if err != nil {
		return 0, classifyZstd(err)
	}
	if n > int64(z.limit) {
		return 0, decodeErrf(KindDecompressedTooLarge, "frame inflates beyond the cap of %d bytes", z.limit)
	}
	return int(n), nil
}

// decodeAll decodes a frame whose content size is known and within the cap.
func (z *inflater) decodeAll(frame, dst []byte) ([]byte, *DecodeError) {
	out, err := z.all.DecodeAll(frame, dst)
	if err != nil {
		return nil, classifyZstd(err)
	}
	if len(out) > z.limit {
		return nil, decodeErrf(KindDecompressedTooLarge, "frame inflated to %d bytes, cap is %d", len(out), z.limit)
	}
	return out, nil
}

func classifyZstd(err error) *DecodeError {
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return decodeErr(KindDecompressedTooLarge, err)
	}
	return decodeErr(KindBadZstd, err)
}

var (
	errFrameTruncated = errors.New("zstd frame truncated")
	errReservedBlock  = errors.New("zstd block uses the reserved block type")
)

// frameLength walks the block headers of the frame described by h and
// returns its total size in bytes, checksum included.
func frameLength(frame []byte, h *zstd.Header) (int, error) {
	pos := h.HeaderSize
	for last := false; !last; {
		if len(frame)-pos < 3 {
			return 0, errFrameTruncated
		}
		bh := int(frame[pos]) | int(frame[pos+1])<<8 | int(frame[pos+2])<<16
		pos += 3
		last = bh&1 == 1
		size := bh >> 3
		switch (bh >> 1) & 3 {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return 0, errReservedBlock
		}
		if len(frame)-pos < size {
			return 0, errFrameTruncated
		}
		pos += size
	}
	if h.HasCheckSum {
		pos += 4
	}
	if pos > len(frame) {
		return 0, errFrameTruncated
	}
	return pos, nil
}
