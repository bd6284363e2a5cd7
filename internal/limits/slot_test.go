package limits

import "testing"

func TestSlotReleasedOnceAndHandedOver(t *testing.T) {
	n := 0
	s := NewSlot(func() { n++ })
	release := s.Take()
	if !s.Taken() {
		t.Fatal("slot not marked taken")
	}
	release()
	release()
	s.Release()
	if n != 1 {
		t.Fatalf("released %d times, want 1", n)
	}
}
