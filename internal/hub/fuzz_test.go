package hub

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// readAll drives frameReader over data until it fails the connection or
// the input ends, and describes every inbound in order.
func readAll(t *testing.T, data []byte) (got []string, fail ws.StatusCode) {
	fr := frameReader{br: bufio.NewReaderSize(bytes.NewReader(data), 512)}
	for range len(data) + 1 { // every inbound consumes at least 2 bytes
		in, err := fr.next()
		switch {
		case err != nil:
			return got, 0
		case in.fail != 0:
			return got, in.fail
		}
		switch in.op {
		case ws.OpText:
			if !utf8.Valid(in.data) {
				t.Fatalf("text message that is not UTF-8: %q", in.data)
			}
			fallthrough
		case ws.OpBinary:
			if len(in.data) > wsproto.MaxControlBytes {
				t.Fatalf("message of %d bytes", len(in.data))
			}
		case ws.OpPing, ws.OpPong, ws.OpClose:
			if len(in.data) > 125 {
				t.Fatalf("control payload of %d bytes", len(in.data))
			}
		default:
			t.Fatalf("inbound opcode %v", in.op)
		}
		got = append(got, describe(in.op, in.data, in.closeCode))
		if in.op == ws.OpClose {
			return got, 0
		}
	}
	t.Fatal("frameReader never stopped")
	return nil, 0
}

func describe(op ws.OpCode, data []byte, code ws.StatusCode) string {
	return fmt.Sprintf("%v %q %d", op, data, code)
}

// refRead is a second, deliberately naive reading of RFC 6455 §5 over a
// byte slice (whole-message buffers, UTF-8 checked by trying to complete a
// cut rune), to which frameReader must agree on every input.
func refRead(b []byte) (got []string, fail ws.StatusCode) {
	var msg []byte
	var op byte
	frag := false
	for {
		if len(b) < 2 {
			return got, 0
		}
		b0, b1 := b[0], b[1]
		b = b[2:]
		n := uint64(b1 & 0x7f)
		ext := map[uint64]int{126: 2, 127: 8}[n]
		masked := b1&0x80 != 0
		need := ext
		if masked {
			need += 4
		}
		if len(b) < need {
			return got, 0
		}
		switch ext {
		case 2:
			n = uint64(binary.BigEndian.Uint16(b))
		case 8:
			if b[0]&0x80 != 0 {
				return got, 1002
			}
			n = binary.BigEndian.Uint64(b)
		}
		key := b[ext:need]
		b = b[need:]
		finBit, rsv, opc := b0&0x80 != 0, b0&0x70, b0&0x0f
		control := opc >= 8
		if !masked || rsv != 0 || (opc >= 3 && opc <= 7) || opc >= 11 {
			return got, 1002
		}
		if !control && (opc == 0) != frag {
			return got, 1002
		}
		if control && (n > 125 || !finBit) {
			return got, 1002
		}
		if !control && uint64(len(msg))+n > 1<<20 {
			return got, 1009
		}
		if uint64(len(b)) < n {
			return got, 0
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = b[i] ^ key[i%4]
		}
		b = b[n:]
		switch opc {
		case 9, 10:
			got = append(got, describe(ws.OpCode(opc), p, 0))
			continue
		case 8:
			code, f := refClose(p)
			if f != 0 {
				return got, f
			}
			return append(got, describe(ws.OpClose, p, code)), 0
		}
		if opc != 0 {
			op = opc
		}
		msg = append(msg, p...)
		frag = !finBit
		if op == 1 && !refUTF8(msg, finBit) {
			return got, 1007
		}
		if finBit {
			got = append(got, describe(ws.OpCode(op), msg, 0))
			msg = nil
		}
	}
}

func refClose(p []byte) (reply, fail ws.StatusCode) {
	if len(p) == 0 {
		return 1000, 0
	}
	if len(p) == 1 {
		return 0, 1002
	}
	code := int(p[0])<<8 | int(p[1])
	invalid := []bool{code < 1000, code == 1004, code == 1005, code == 1006, code >= 1015 && code < 3000, code >= 5000}
	if slices.Contains(invalid, true) {
		return 0, 1002
	}
	if !utf8.Valid(p[2:]) {
		return 0, 1007
	}
	return ws.StatusCode(code), 0
}

// refUTF8 reports whether msg is valid UTF-8 (final) or could still become
// valid: valid but for at most 3 trailing bytes that some continuation bytes
// would complete into one rune.
func refUTF8(msg []byte, final bool) bool {
	if utf8.Valid(msg) {
		return true
	}
	if final {
		return false
	}
	for k := 1; k <= 3 && k <= len(msg); k++ {
		head, tail := msg[:len(msg)-k], msg[len(msg)-k:]
		if !utf8.Valid(head) {
			continue
		}
		for c := byte(0x80); c <= 0xbf; c++ {
			for fill := 1; k+fill <= 4; fill++ {
				try := append(slices.Clone(tail), bytes.Repeat([]byte{0x80}, fill)...)
				if k == 1 {
					try[1] = c
				}
				if utf8.Valid(try) && utf8.RuneCount(try) == 1 {
					return true
				}
			}
		}
	}
	return false
}

// FuzzReadFrame feeds raw client bytes to the WebSocket frame reader: it
// must never panic, never deliver text that is not UTF-8, a message over
// 1 MiB or a control payload over 125 bytes, and must agree with refRead on
// every message, control frame and close code.
func FuzzReadFrame(f *testing.F) {
	euro := `{"x":"€"}`
	seeds := [][]byte{
		frames(fin|opText, `{"type":"ping"}`),
		frames(opText, euro[:7], opCont, euro[7:8], fin|opPing, "p", fin|opCont, euro[8:]),
		frames(fin|opBin, "\xff", fin|opPong, "", fin|opCls, closePayload(1001, "bye")),
		frames(fin|opCls, "\x03"),
		frames(fin|opCls, closePayload(1000, "\xff")),
		frames(fin|opText, "\xed\xa0\x80"),
		frames(opText, "a\xe2", fin|opCont, "\x82\xac"),
		rawFrame(fin|opText, false, 0, []byte("x")),
		rawFrame(fin|0x40|opText, true, 0, []byte("x")),
		rawFrame(fin|opPing, true, 2, []byte("hello")),
		rawFrame(fin|opPing, true, 0, make([]byte, 126)),
		rawFrame(opPing, true, 0, nil),
		rawFrame(fin|opText, true, 8, []byte("64-bit length")),
		{fin | opText, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		append([]byte{fin | opText, 0x80 | 127}, append(binary.BigEndian.AppendUint64(nil, 1<<20+1), 1, 2, 3, 4)...),
		frames(fin|opCont, "x"),
		{},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, fail := readAll(t, data)
		want, wantFail := refRead(data)
		if !slices.Equal(got, want) || fail != wantFail {
			t.Fatalf("frameReader: %q then close %d\nreference:   %q then close %d", got, fail, want, wantFail)
		}
	})
}
