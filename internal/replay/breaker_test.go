package replay

import (
	"slices"
	"sync"
	"testing"
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
