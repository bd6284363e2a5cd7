package replay

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBreakerTransitions(t *testing.T) {
	var mu sync.Mutex
	var seen []int32
	b := newBreaker(3, func(s int32) { mu.Lock(); seen = append(seen, s); mu.Unlock() })
	steps := []struct {
		name string
		do   func() bool
		want int32
	}{
		{"starts probing", func() bool { return false }, stateStarting},
		{"first probe fails", func() bool { return b.probed(false) }, stateOpen},
		{"probe answers", func() bool { return b.probed(true) }, stateClosed},
		{"failure 1", b.failure, stateClosed},
		{"failure 2", b.failure, stateClosed},
		{"success resets", func() bool { b.success(); return false }, stateClosed},
		{"failure 1 again", b.failure, stateClosed},
		{"failure 2 again", b.failure, stateClosed},
		{"failure 3 opens", b.failure, stateOpen},
		{"more failures", b.failure, stateOpen},
		{"failed probe keeps open", func() bool { return b.probed(false) }, stateOpen},
		{"probe closes", func() bool { return b.probed(true) }, stateClosed},
	}
	for _, s := range steps {
		s.do()
		if got := b.current(); got != s.want {
			t.Fatalf("%s: state %d, want %d", s.name, got, s.want)
		}
		if b.closed() != (s.want == stateClosed) {
			t.Fatalf("%s: closed() = %v", s.name, b.closed())
		}
	}
	if want := []int32{stateOpen, stateClosed, stateOpen, stateClosed}; !slices.Equal(seen, want) {
		t.Fatalf("changes %v, want %v", seen, want)
	}
}

func TestBreakerConcurrentFailuresOpenOnce(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	b := newBreaker(5, func(s int32) {
		mu.Lock()
		defer mu.Unlock()
		if s == stateOpen {
			opened++
		}
	})
	b.probed(true)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { b.failure() })
	}
	wg.Wait()
	if opened != 1 || b.current() != stateOpen {
		t.Fatalf("opened %d times, state %d", opened, b.current())
	}
}

// TestBreakerStatus: the snapshot follows the state machine; half_open
// while the first probe decides and while a probe is in flight after
// opening; the down time is the creation, then the last opening.
func TestBreakerStatus(t *testing.T) {
	before := time.Now()
	b := newBreaker(2, nil)
	check := func(step, state string, fails int, opens uint64, down bool) BreakerStatus {
		t.Helper()
		st := b.status()
		if st.State != state || st.ConsecutiveFailures != fails || st.TimesOpened != opens ||
			st.FailureThreshold != 2 || st.DownSince.IsZero() == down {
			t.Fatalf("%s: %+v, want state %s, %d failures, %d opens, down %v", step, st, state, fails, opens, down)
		}
		return st
	}
	start := check("new", BreakerHalfOpen, 0, 0, true)
	if start.DownSince.Before(before) || start.DownSince.After(time.Now()) {
		t.Fatalf("down since %v, want the creation time", start.DownSince)
	}
	b.probeStarted()
	check("first probe in flight", BreakerHalfOpen, 0, 0, true)
	b.probed(false)
	if st := check("first probe failed", BreakerOpen, 1, 1, true); !st.DownSince.Equal(start.DownSince) {
		t.Fatalf("down since moved to %v on the first failed probe", st.DownSince)
	}
	b.probeStarted()
	check("probe in flight while open", BreakerHalfOpen, 1, 1, true)
	b.probed(false)
	check("probe failed again", BreakerOpen, 2, 1, true)
	b.probeStarted()
	b.probed(true)
	check("probe answered", BreakerHealthy, 0, 1, false)
	b.failure()
	check("one failure", BreakerHealthy, 1, 1, false)
	time.Sleep(2 * time.Millisecond)
	b.failure()
	if st := check("threshold reached", BreakerOpen, 2, 2, true); !st.DownSince.After(start.DownSince) {
		t.Fatalf("down since %v, want the second opening (after %v)", st.DownSince, start.DownSince)
	}
}
