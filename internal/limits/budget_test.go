package limits

import (
	"errors"
	"sync"
	"testing"
)

func TestBudgetFor(t *testing.T) {
	cases := []struct {
		name           string
		fdLimit, maxWS int
		reserve, ws    int
		public, intern int
		overcommitted  bool
	}{
		{"ulimit 256", 256, 0, 64, 192, 200, 8, false},
		{"ulimit 1024", 1024, 0, 102, 922, 934, 12, false},
		{"ulimit 65536", 65536, 0, 6553, 58983, 59802, 64, false},
		{"tiny limit still admits one", 32, 0, 64, 1, 9, 8, true},
		{"unknown limit", 0, 0, 64, 10000, 10008, 8, false},
		{"huge limit capped", 1 << 40, 0, 104857, 943719, 956826, 64, false},
		{"explicit cap", 256, 100, 64, 100, 108, 8, false},
		{"explicit cap beyond the limit", 256, 1000, 64, 1000, 1008, 8, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := BudgetFor(tc.fdLimit, tc.maxWS)
			if b.Reserve != tc.reserve || b.WebSockets != tc.ws || b.PublicConns != tc.public || b.InternalConns != tc.intern {
				t.Fatalf("got %+v", b)
			}
			if b.Overcommitted() != tc.overcommitted {
				t.Fatalf("overcommitted = %v for %+v", b.Overcommitted(), b)
			}
			// With a derived cap, half the reserve stays free for Kafka,
			// Redis and files whatever every listener holds.
			if tc.maxWS == 0 && b.FDLimit > 2*MinReserve {
				if used := b.PublicConns + b.InternalConns + b.Refusing; used > b.FDLimit-b.Reserve/2 {
					t.Fatalf("listeners may use %d of %d descriptors", used, b.FDLimit)
				}
			}
		})
	}
}

func TestGate(t *testing.T) {
	g := NewGate(2)
	r1, err1 := g.Acquire()
	r2, err2 := g.Acquire()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := g.Acquire(); !errors.Is(err, ErrServerFull) {
		t.Fatalf("third acquire: %v, want ErrServerFull", err)
	}
	r1()
	r1() // idempotent: must not free a second place
	if g.Active() != 1 {
		t.Fatalf("active = %d", g.Active())
	}
	r3, err := g.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Acquire(); !errors.Is(err, ErrServerFull) {
		t.Fatal("double release freed an extra place")
	}
	r2()
	r3()
	if g.Active() != 0 || g.Max() != 2 {
		t.Fatalf("active %d max %d", g.Active(), g.Max())
	}
	var nilGate *Gate
	if r, err := nilGate.Acquire(); err != nil || nilGate.Active() != 0 || nilGate.Max() != 0 {
		t.Fatal("nil gate must admit")
	} else {
		r()
	}
	if NewGate(0) != nil {
		t.Fatal("NewGate(0) must be unlimited")
	}
}

func TestGateConcurrent(t *testing.T) {
	g := NewGate(5)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 1000 {
				if rel, err := g.Acquire(); err == nil {
					if n := g.Active(); n > 5 {
						t.Errorf("active %d beyond max", n)
					}
					rel()
				}
			}
		})
	}
	wg.Wait()
	if g.Active() != 0 {
		t.Fatalf("leaked %d places", g.Active())
	}
}
