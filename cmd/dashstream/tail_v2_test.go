package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// v2Gateway stands in for a gateway that speaks v2, at the codec level: it
// records the subprotocols offered and the resume sent, then sends one JSON
// record built by wsproto and replay_complete. A mock because what is
// checked is what the client sent (the real hub does not report the
// subprotocols offered or the resume it read); tail against the real hub
// runs in tail_test.go.
func v2Gateway(t *testing.T) (url string, offered chan []string, resumes chan map[string]any) {
	t.Helper()
	offered, resumes = make(chan []string, 4), make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.NotFound(w, r)
			return
		}
		offered <- strings.Split(strings.ReplaceAll(r.Header.Get("Sec-WebSocket-Protocol"), " ", ""), ",")
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsproto.SubprotocolV2}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var res map[string]any
		_ = json.Unmarshal(b, &res) // checked by the test
		resumes <- res
		_ = c.Write(ctx, websocket.MessageText, wsproto.AppendRecordJSON(nil, 1, 9, []byte(`{"event":{"header":{"threadId":"run-42"}}}`)))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"replay_complete","totalReplayed":1,"lastOffsetsByPartition":{"1":"9"},"capped":false,"mode":"latest"}`))
		_, _, _ = c.Read(ctx)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", offered, resumes
}

// TestTailV2Flags: the filter, format and join flags reach the resume, --v2
// offers the subprotocol, and a JSON record is printed as received.
func TestTailV2Flags(t *testing.T) {
	url, offered, resumes := v2Gateway(t)
	code, out, errOut := runTailForTest(t, "--url", url, "--json", "--thread", "run-42", "--thread", "run,43",
		"--thread-prefix", "run", "--type", "event,event_batch", "--event-type", "NODE_END", "--event-type", "EVENT_TYPE_GRAPH_END",
		"--join", "checkpoint", "--max", "1", "--timeout", "10s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := <-offered; len(got) != 1 || got[0] != wsproto.SubprotocolV2 {
		t.Fatalf("subprotocols offered: %q", got)
	}
	res := <-resumes
	filter, _ := json.Marshal(res["filter"])
	want := `{"event_types":["NODE_END","EVENT_TYPE_GRAPH_END"],"thread_prefix":"run","threads":["run-42","run,43"],"types":["event","event_batch"]}`
	if string(filter) != want || res["format"] != "json" || res["join"] != "checkpoint" || res["from"] != "latest" {
		t.Fatalf("resume %v\nfilter %s\n want %s", res, filter, want)
	}
	if strings.TrimSpace(out) != `{"partition":1,"offset":"9","message":{"event":{"header":{"threadId":"run-42"}}}}` {
		t.Fatalf("stdout %q", out)
	}
}

func TestTailV2Usage(t *testing.T) {
	cases := map[string][]string{
		"--last-sequence without --thread": {"--last-sequence", "3"},
		"--last-sequence with two threads": {"--thread", "a", "--thread", "b", "--last-sequence", "3"},
		"--json with --pretty":             {"--json", "--pretty"},
		"unknown type":                     {"--type", "events"},
		"unknown event type":               {"--event-type", "NODE_BEGIN"},
		"bad join":                         {"--join", "snapshot"},
		"empty thread":                     {"--thread", ""},
	}
	for name, args := range cases {
		if code, _, errOut := runTailForTest(t, args...); code != 2 || !strings.Contains(errOut, "dashstream tail: ") {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
}
