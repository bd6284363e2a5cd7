package limits

import (
	"context"
	"testing"
)

func TestSlotReleasedOnceAndHandedOver(t *testing.T) {
	n := 0
	s := NewSlot(func() { n++ })
	ctx := WithSlot(context.Background(), s)
	release := TakeSlot(ctx)
	if !s.Taken() {
		t.Fatal("slot not marked taken")
	}
	release()
	release()
	s.Release()
	if n != 1 {
		t.Fatalf("released %d times, want 1", n)
	}
	TakeSlot(context.Background())() // no slot: a no-op
}
