package e2e

// Token lifetimes end to end (docs/PROTOCOL.md §3.8): a whole gateway
// verifying HS256 JWTs, real Kafka, records produced throughout. A client
// that refreshes its short token keeps its connection and its stream; one
// that does not is closed with TOKEN_EXPIRED and 1008 at expiry, and
// resumes on a new connection with nothing lost or duplicated.

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dashflow/dashstream-gateway/internal/wsclient"
)

const refreshSecret = "token-refresh-e2e-secret"

// refreshToken is an HS256 JWT expiring at exp (whole seconds).
func refreshToken(t *testing.T, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "dash",
		"exp": exp.Unix()}).SignedString([]byte(refreshSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inSeconds is the whole second at least d-1s and at most d from now.
func inSeconds(d time.Duration) time.Time { return time.Unix(time.Now().Add(d).Unix(), 0) }

func dialToken(t *testing.T, g *gateway, token string, cursor map[int32]int64) *wsclient.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, g.ws, wsclient.Options{Header: http.Header{"Authorization": {"Bearer " + token}},
		Resume: &wsclient.Resume{From: wsclient.FromCursor, Offsets: cursor}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestTokenRefreshEndToEnd(t *testing.T) {
	const partitions = 2
	k, topic := kafkaEnv(t, partitions)
	env := gatewayEnv(k, topic)
	env["WEBSOCKET_JWT_SECRET"] = refreshSecret
	env["WEBSOCKET_JWT_LEEWAY_SECS"] = "0" // expiry at exp exactly
	g := startGateway(t, env)
	l := newProduced()
	l.produce(t, k, topic, 20, 0, 1)
	waitHeads(t, g, l.last(), 30*time.Second)
	startProducer(t, k, topic, l, partitions, 2, 50*time.Millisecond)

	t.Run("refreshing client keeps its stream", func(t *testing.T) {
		t.Parallel()
		first := inSeconds(3 * time.Second)
		s := newExact(l, cursorAll(partitions, -1))
		c := dialToken(t, g, refreshToken(t, first), s.cursor())
		// The refresher stops on its own channel: cancelling the context
		// of a Send in flight would make the WebSocket library close the
		// connection the test goes on reading.
		stop := make(chan struct{})
		sent := make(chan int, 1)
		go func() { // refreshes every second with a new 3 s token
			n := 0
			defer func() { sent <- n }()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.Send(ctx, map[string]string{"type": "refresh", "token": refreshToken(t, inSeconds(3*time.Second))})
				cancel()
				if err != nil {
					return
				}
				n++
			}
		}()
		end := time.Now().Add(6 * time.Second)
		completes, afterFirst := 0, 0
		err := readExact(c, s, 15*time.Second, func(m wsclient.Message) (bool, error) {
			if m.Kind == wsclient.KindRecord && time.Now().After(first) {
				afterFirst++
			}
			if m.Kind == wsclient.KindControl {
				switch typ := m.Control.Type; {
				case typ == "refresh_complete":
					completes++
				case badControl(typ):
					return false, errors.New("unexpected frame " + string(m.Control.Raw))
				}
			}
			return time.Now().After(end), nil
		})
		close(stop)
		refreshes := <-sent
		if err != nil {
			t.Fatalf("after %d refreshes (%d answered): %v", refreshes, completes, err)
		}
		last := l.last() // the connection is still good: it catches up to what was produced by now
		readExactTo(t, c, s, last, 20*time.Second)
		if completes < 4 || afterFirst == 0 {
			t.Fatalf("%d refresh_complete for %d refreshes, %d records after the first token's expiry: want >= 4 and some",
				completes, refreshes, afterFirst)
		}
		t.Logf("%d records exactly once over %v, %d refreshes", s.n, 6*time.Second, completes)
	})

	t.Run("expired client resumes on a new token", func(t *testing.T) {
		t.Parallel()
		exp := inSeconds(3 * time.Second)
		s := newExact(l, cursorAll(partitions, -1))
		c := dialToken(t, g, refreshToken(t, exp), s.cursor())
		var last wsclient.Control
		err := readExact(c, s, 15*time.Second, func(m wsclient.Message) (bool, error) {
			if m.Kind == wsclient.KindControl && m.Control.Type != "replay_complete" {
				last = m.Control
			}
			return false, nil
		})
		closedAt := time.Now()
		var ce *wsclient.CloseError
		if !errors.As(err, &ce) || ce.Code != 1008 {
			t.Fatalf("connection ended with %v, want close 1008", err)
		}
		var e struct{ Code string }
		if last.Type != "error" || last.Decode(&e) != nil || e.Code != "TOKEN_EXPIRED" {
			t.Fatalf("last control before the close %s, want error TOKEN_EXPIRED", last.Raw)
		}
		if closedAt.Before(exp) || closedAt.After(exp.Add(1500*time.Millisecond)) {
			t.Fatalf("closed at %s, token expired at %s: want within 1 s after", closedAt.Format(time.StampMilli), exp.Format(time.StampMilli))
		}
		if s.n == 0 {
			t.Fatal("no record before the expiry: the resume would prove nothing")
		}
		before := s.n
		time.Sleep(500 * time.Millisecond) // records produced while it is away come in the replay
		c2 := dialToken(t, g, refreshToken(t, time.Now().Add(time.Hour)), s.cursor())
		_, replayed := readReplayComplete(t, c2, s, 20*time.Second)
		if replayed == 0 {
			t.Fatal("the resume replayed nothing: the records produced meanwhile are missing")
		}
		readExactTo(t, c2, s, l.last(), 20*time.Second)
		t.Logf("%d records before the expiry, %d replayed, %d after the resume in all, exactly once", before, replayed, s.n-before)
	})
}
