package wsclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// floodServer writes pre-encoded record frames (cursor + 512-byte binary) as
// fast as the client reads them, so a benchmark measures the client.
func floodServer(b *testing.B) string {
	b.Helper()
	value := make([]byte, 512)
	var block []byte
	for i := int64(0); i < 256; i++ {
		frames, _ := wsproto.RecordFrames(0, i, value)
		block = append(block, frames...)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			if _, err := conn.Write(block); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// BenchmarkNext compares the two transports reading records over loopback.
func BenchmarkNext(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			url := floodServer(b)
			c, err := tr.dial(context.Background(), url, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			ctx := context.Background()
			b.SetBytes(512)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg, err := c.Next(ctx)
				if err != nil || msg.Kind != KindRecord {
					b.Fatalf("next: %v %v", msg.Kind, err)
				}
			}
		})
	}
}

func BenchmarkParseCursor(b *testing.B) {
	frame := []byte(`{"type":"cursor","partition":3,"offset":"1234567890"}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, ok, _ := parseCursor(frame); !ok {
			b.Fatal("not a cursor")
		}
	}
}

func BenchmarkCursorApply(b *testing.B) {
	c := NewCursor()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Apply(Record{Partition: int32(i & 3), Offset: int64(i >> 2)})
	}
}
