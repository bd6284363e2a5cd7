package hub

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/replay"
)

// rawFrame builds one client frame by hand, so that the header can say
// anything: b0 is FIN|RSV|opcode, the payload is masked with a fixed key
// when masked is set, and the length takes the shortest form unless
// lenBytes forces 2 (16-bit) or 8 (64-bit).
func rawFrame(b0 byte, masked bool, lenBytes int, payload []byte) []byte {
	out := []byte{b0, 0}
	if masked {
		out[1] = 0x80
	}
	n := len(payload)
	switch {
	case lenBytes == 8 || (lenBytes == 0 && n > 0xffff):
		out[1] |= 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	case lenBytes == 2 || (lenBytes == 0 && n > 125):
		out[1] |= 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] |= byte(n)
	}
	if !masked {
		return append(out, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

const (
	fin    = 0x80
	opCont = byte(ws.OpContinuation)
	opText = byte(ws.OpText)
	opBin  = byte(ws.OpBinary)
	opPing = byte(ws.OpPing)
	opPong = byte(ws.OpPong)
	opCls  = byte(ws.OpClose)
)

// frames concatenates masked frames given as (b0, payload) pairs.
func frames(parts ...any) []byte {
	var out []byte
	for i := 0; i < len(parts); i += 2 {
		out = append(out, rawFrame(parts[i].(byte), true, 0, []byte(parts[i+1].(string)))...)
	}
	return out
}

func closePayload(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

// TestReaderHostileFrames sends raw client bytes over a real TCP connection
// to a real session and checks what the server answers (RFC 6455): the
// close code a violation fails the connection with (1002 protocol error,
// 1007 text that is not UTF-8, 1009 too big), the socket closed after it;
// or, for what is valid, the answer and a connection that stays usable.
func TestReaderHostileFrames(t *testing.T) {
	ping := `{"type":"ping"}`
	euro := `{"type":"ping","x":"€"}` // € is e2 82 ac
	cut := bytes.IndexByte([]byte(euro), 0xe2)
	mid := string([]byte{0x80}) // a lone continuation byte
	cases := []struct {
		name  string
		bytes []byte
		close ws.StatusCode // 0: no close, the connection answers pong below
	}{
		// §5.1: a client frame must be masked.
		{"unmasked text", rawFrame(fin|opText, false, 0, []byte(ping)), ws.StatusProtocolError},
		{"unmasked ping", rawFrame(fin|opPing, false, 0, nil), ws.StatusProtocolError},
		// §5.2: no extension, so no RSV bit; reserved opcodes.
		{"RSV1", rawFrame(fin|0x40|opText, true, 0, []byte(ping)), ws.StatusProtocolError},
		{"RSV2", rawFrame(fin|0x20|opText, true, 0, []byte(ping)), ws.StatusProtocolError},
		{"RSV3 on ping", rawFrame(fin|0x10|opPing, true, 0, nil), ws.StatusProtocolError},
		{"reserved data opcode 3", rawFrame(fin|0x3, true, 0, []byte("x")), ws.StatusProtocolError},
		{"reserved data opcode 7", rawFrame(fin|0x7, true, 0, nil), ws.StatusProtocolError},
		{"reserved control opcode B", rawFrame(fin|0xB, true, 0, nil), ws.StatusProtocolError},
		{"reserved control opcode F", rawFrame(fin|0xF, true, 0, []byte("x")), ws.StatusProtocolError},
		{"64-bit length with MSB set", append([]byte{fin | opText, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, 1, 2, 3, 4), ws.StatusProtocolError},
		// §5.4: fragmentation.
		{"continuation without a start", frames(fin|opCont, ping), ws.StatusProtocolError},
		{"text inside a fragmented text", frames(opText, `{"type":`, fin|opText, ping), ws.StatusProtocolError},
		{"binary inside a fragmented text", frames(opText, `{"type":`, fin|opBin, "x"), ws.StatusProtocolError},
		// §5.5: control frames are short and whole.
		{"ping of 126 bytes", rawFrame(fin|opPing, true, 0, make([]byte, 126)), ws.StatusProtocolError},
		{"ping of 5 bytes in 16-bit form", append(rawFrame(fin|opPing, true, 2, []byte("hello")), rawFrame(fin|opText, true, 0, []byte(ping))...), 0},
		{"fragmented ping", rawFrame(opPing, true, 0, []byte("x")), ws.StatusProtocolError},
		{"fragmented close", rawFrame(opCls, true, 0, []byte(closePayload(1000, ""))), ws.StatusProtocolError},
		// §5.5.1, §7.4: close payloads.
		{"close with 1 byte", frames(fin|opCls, "\x03"), ws.StatusProtocolError},
		{"close code 0", frames(fin|opCls, closePayload(0, "")), ws.StatusProtocolError},
		{"close code 999", frames(fin|opCls, closePayload(999, "")), ws.StatusProtocolError},
		{"close code 1004", frames(fin|opCls, closePayload(1004, "")), ws.StatusProtocolError},
		{"close code 1005", frames(fin|opCls, closePayload(1005, "")), ws.StatusProtocolError},
		{"close code 1006", frames(fin|opCls, closePayload(1006, "")), ws.StatusProtocolError},
		{"close code 1015", frames(fin|opCls, closePayload(1015, "")), ws.StatusProtocolError},
		{"close code 1016", frames(fin|opCls, closePayload(1016, "")), ws.StatusProtocolError},
		{"close code 2999", frames(fin|opCls, closePayload(2999, "")), ws.StatusProtocolError},
		{"close code 5000", frames(fin|opCls, closePayload(5000, "")), ws.StatusProtocolError},
		{"close code 65535", frames(fin|opCls, closePayload(65535, "")), ws.StatusProtocolError},
		{"close reason not UTF-8", frames(fin|opCls, closePayload(1000, "bye\xff")), ws.StatusInvalidFramePayloadData},
		{"empty close", frames(fin|opCls, ""), ws.StatusNormalClosure},
		{"close 1000 echoed", frames(fin|opCls, closePayload(1000, "bye")), ws.StatusNormalClosure},
		{"close 1001 echoed", frames(fin|opCls, closePayload(1001, "")), ws.StatusGoingAway},
		{"close 1003 echoed", frames(fin|opCls, closePayload(1003, "")), ws.StatusUnsupportedData},
		{"close 1007 echoed", frames(fin|opCls, closePayload(1007, "")), ws.StatusInvalidFramePayloadData},
		{"close 1011 echoed", frames(fin|opCls, closePayload(1011, "")), ws.StatusInternalServerError},
		{"close 1014 echoed", frames(fin|opCls, closePayload(1014, "")), 1014},
		{"close 3000 echoed", frames(fin|opCls, closePayload(3000, "app")), 3000},
		{"close 4999 echoed with UTF-8 reason", frames(fin|opCls, closePayload(4999, "ça va €")), 4999},
		// §8.1: text must be UTF-8, checked as it arrives (1007).
		{"text 0xff", frames(fin|opText, `{"type":"ping","x":"`+"\xff"+`"}`), ws.StatusInvalidFramePayloadData},
		{"text overlong slash", frames(fin|opText, "\xc0\xaf"), ws.StatusInvalidFramePayloadData},
		{"text surrogate", frames(fin|opText, "\xed\xa0\x80"), ws.StatusInvalidFramePayloadData},
		{"text above U+10FFFF", frames(fin|opText, "\xf4\x90\x80\x80"), ws.StatusInvalidFramePayloadData},
		{"text lone continuation", frames(fin|opText, "a"+mid), ws.StatusInvalidFramePayloadData},
		{"text ends mid-rune", frames(fin|opText, "a\xe2\x82"), ws.StatusInvalidFramePayloadData},
		{"fragment invalid, rest never sent (fail fast)", frames(opText, "ok \xff"), ws.StatusInvalidFramePayloadData},
		{"rune split, bad continuation", frames(opText, "a\xe2\x82", fin|opCont, "(x"), ws.StatusInvalidFramePayloadData},
		{"message ends mid-rune after fragments", frames(opText, "a\xe2", opCont, "\x82", fin|opCont, ""), ws.StatusInvalidFramePayloadData},
		{"rune split over three fragments", frames(opText, euro[:cut+1], opCont, euro[cut+1:cut+2], fin|opCont, euro[cut+2:]), 0},
		{"rune split, ping in between", frames(opText, euro[:cut+2], fin|opPing, "p", fin|opCont, euro[cut+2:]), 0},
		{"binary need not be UTF-8", frames(fin|opBin, "\xff\xfe", fin|opText, ping), 0},
		// 1009: over wsproto.MaxControlBytes, from the header alone.
		{"text announcing 2 MiB", append([]byte{fin | opText, 0x80 | 127}, append(binary.BigEndian.AppendUint64(nil, 2<<20), 1, 2, 3, 4)...), ws.StatusMessageTooBig},
	}
	th := newTestHub(t, Config{}, replay.MemoryConfig{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := th.dialRaw(t, 0)
			c.resumeLatest()
			c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.conn.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if tc.close == 0 {
				c.readJSON("pong") // the text message got through, whole
				return
			}
			code, _ := c.readClose(5 * time.Second)
			if code != tc.close {
				t.Fatalf("close %d, want %d", code, tc.close)
			}
			if _, _, err := c.readFrame(5 * time.Second); err == nil {
				t.Fatal("a frame after the close frame; want the connection closed")
			}
		})
	}
}

func TestValidUTF8Prefix(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		ok   bool
		note string
	}{
		{"", 0, true, "empty"},
		{"abc", 3, true, "ASCII"},
		{"a€", 4, true, "whole rune"},
		{"a\xe2", 1, true, "cut after the lead byte"},
		{"a\xe2\x82", 1, true, "cut after two of three bytes"},
		{"\xf0\x9f\x98", 0, true, "cut 4-byte rune"},
		{"a\xe2(", 1, false, "lead byte then ASCII"},
		{"\xed\xa0", 0, false, "surrogate prefix can never complete"},
		{"\xe0\x80", 0, false, "overlong prefix"},
		{"\xf4\x90", 0, false, "prefix above U+10FFFF"},
		{"\xf5", 0, false, "never a lead byte"},
		{"\xc0", 0, false, "overlong 2-byte lead"},
		{"\x80", 0, false, "lone continuation"},
		{"ok\xffok", 2, false, "invalid in the middle"},
	}
	for _, tc := range cases {
		n, ok := validUTF8Prefix([]byte(tc.in))
		if n != tc.n || ok != tc.ok {
			t.Errorf("%s: validUTF8Prefix(%q) = %d, %v; want %d, %v", tc.note, tc.in, n, ok, tc.n, tc.ok)
		}
	}
}
