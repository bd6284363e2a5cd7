package limits

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dashflow/dashstream-gateway/internal/testenv"
)

func newClock() *testenv.Clock { return testenv.NewClock(time.Unix(1_700_000_000, 0)) }

var ip1 = netip.MustParseAddr("203.0.113.1")

func TestPerIPLimit(t *testing.T) {
	l := NewConnLimiter(LimiterConfig{MaxPerIP: 2})
	r1, err1 := l.Acquire(ip1)
	r2, err2 := l.Acquire(ip1)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := l.Acquire(ip1); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("third acquire: %v", err)
	}
	if _, err := l.Acquire(netip.MustParseAddr("203.0.113.2")); err != nil {
		t.Fatalf("other ip: %v", err)
	}
	r1()
	r1() // idempotent: must not free a second slot
	if l.Active(ip1) != 1 {
		t.Fatalf("active = %d", l.Active(ip1))
	}
	r3, err := l.Acquire(ip1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ip1); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("double release freed an extra slot: %v", err)
	}
	r2()
	r3()
}

func TestRateLimit(t *testing.T) {
	clk := newClock()
	l := NewConnLimiter(LimiterConfig{RatePerIP: 1, BurstPerIP: 3, Now: clk.Now})
	for i := range 3 {
		rel, err := l.Acquire(ip1)
		if err != nil {
			t.Fatalf("burst %d: %v", i, err)
		}
		rel()
	}
	if _, err := l.Acquire(ip1); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("over burst: %v", err)
	}
	if l.Tracked() != 1 {
		t.Fatal("entry with a partial bucket must be remembered")
	}
	clk.Advance(time.Second)
	rel, err := l.Acquire(ip1)
	if err != nil {
		t.Fatalf("after refill: %v", err)
	}
	rel()
}

func TestIPv6GroupedBy64(t *testing.T) {
	l := NewConnLimiter(LimiterConfig{MaxPerIP: 1})
	rel, err := l.Acquire(netip.MustParseAddr("2001:db8:1:2::1"))
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	if _, err := l.Acquire(netip.MustParseAddr("2001:db8:1:2:ffff::9")); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("same /64: %v", err)
	}
	rel2, err := l.Acquire(netip.MustParseAddr("2001:db8:1:3::1"))
	if err != nil {
		t.Fatalf("other /64: %v", err)
	}
	rel2()
	if Key(netip.MustParseAddr("::ffff:1.2.3.4")) != netip.MustParseAddr("1.2.3.4") {
		t.Fatal("mapped IPv4 not keyed as IPv4")
	}
}

func TestTrackedCap(t *testing.T) {
	clk := newClock()
	l := NewConnLimiter(LimiterConfig{MaxPerIP: 5, RatePerIP: 1, BurstPerIP: 1, MaxTracked: 4, Now: clk.Now})
	var held []func()
	for i := range 4 {
		rel, err := l.Acquire(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rel)
	}
	if _, err := l.Acquire(netip.MustParseAddr("198.51.100.200")); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("over cap with all busy: %v", err)
	}
	held[0]() // idle now but its bucket is empty: forgotten only under pressure
	if l.Tracked() != 4 {
		t.Fatalf("tracked = %d", l.Tracked())
	}
	rel, err := l.Acquire(netip.MustParseAddr("198.51.100.200"))
	if err != nil {
		t.Fatalf("cap should evict the idle entry: %v", err)
	}
	rel()
	for _, r := range held[1:] {
		r()
	}
}

// TestNoLeak acquires and releases many slots, also concurrently and with
// rejections, and checks every count returns to zero and the map empties.
func TestNoLeak(t *testing.T) {
	clk := newClock()
	l := NewConnLimiter(LimiterConfig{MaxPerIP: 3, RatePerIP: 1000, BurstPerIP: 50, Now: clk.Now})
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				ip := netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", (g+i)%7, i))
				rel, err := l.Acquire(ip)
				mu.Lock()
				outcomes[fmt.Sprint(err)]++
				mu.Unlock()
				if err == nil {
					rel()
					rel()
				}
			}
		})
	}
	wg.Wait()
	if outcomes["<nil>"] == 0 {
		t.Fatalf("nothing admitted: %v", outcomes)
	}
	for i := range 7 {
		if n := l.Active(netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", i))); n != 0 {
			t.Fatalf("key %d still holds %d", i, n)
		}
	}
	clk.Advance(time.Minute)
	l.mu.Lock()
	l.sweep(clk.Now(), false)
	l.mu.Unlock()
	if n := l.Tracked(); n != 0 {
		t.Fatalf("tracked after refill = %d", n)
	}
}

func TestNoRateNoLimitForgetsAtRelease(t *testing.T) {
	l := NewConnLimiter(LimiterConfig{})
	for range 1000 {
		rel, err := l.Acquire(ip1)
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	if l.Tracked() != 0 {
		t.Fatalf("tracked = %d", l.Tracked())
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l := NewConnLimiter(LimiterConfig{MaxPerIP: 1 << 20, RatePerIP: 1e9, BurstPerIP: 1 << 20})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if rel, err := l.Acquire(ip1); err == nil {
				rel()
			}
		}
	})
}
