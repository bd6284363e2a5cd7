package chaos

import (
	"fmt"
	"testing"
)

// The auditor must catch every kind of wrong delivery; a suite whose judge
// cannot fail proves nothing.
func TestAudit(t *testing.T) {
	topic := Topic{
		Records: map[Key][]byte{{0, 0}: []byte("a"), {0, 1}: []byte("b"), {1, 0}: []byte("c")},
		Ends:    map[int32]int64{0: 2, 1: 1},
	}
	d := func(ns string, p int32, o int64, v string) Delivery {
		return Delivery{Namespace: ns, Key: Key{p, o}, Value: []byte(v)}
	}
	exact := []Delivery{d("n", 0, 0, "a"), d("n", 0, 1, "b"), d("n", 1, 0, "c")}
	tests := []struct {
		name string
		log  ClientLog
		ns   string
		want Report
	}{
		{"exact", ClientLog{Deliveries: exact}, "", Report{Audited: 3, Delivered: 3}},
		{"lost", ClientLog{Deliveries: exact[:2]}, "", Report{Audited: 3, Delivered: 2, Lost: 1}},
		{"duplicate", ClientLog{Deliveries: append(exact, d("n", 0, 1, "b"))}, "",
			Report{Audited: 3, Delivered: 4, Duplicated: 1}},
		{"dropped duplicates count", ClientLog{Deliveries: exact, DroppedDuplicates: 2}, "",
			Report{Audited: 3, Delivered: 3, Duplicated: 2}},
		{"corrupt", ClientLog{Deliveries: []Delivery{d("n", 0, 0, "a"), d("n", 0, 1, "X"), d("n", 1, 0, "c")}}, "",
			Report{Audited: 3, Delivered: 3, Corrupt: 1}},
		{"phantom", ClientLog{Deliveries: append(exact, d("n", 1, 5, "z"))}, "",
			Report{Audited: 3, Delivered: 4, Phantom: 1}},
		{"gap over records Kafka holds", ClientLog{Deliveries: exact[1:],
			Announced: []Span{{Namespace: "n", Partition: 0, From: 0, To: 0, Type: "gap"}}}, "",
			Report{Audited: 3, Delivered: 2, Announced: 1, FalseGaps: 1}},
		{"other namespace ignored", ClientLog{Deliveries: append([]Delivery{d("old", 0, 0, "zz")}, exact...)}, "n",
			Report{Audited: 3, Delivered: 3}},
		{"other namespace counted when unfiltered", ClientLog{Deliveries: append([]Delivery{d("old", 0, 0, "zz")}, exact...)}, "",
			Report{Audited: 3, Delivered: 4, Corrupt: 1, Duplicated: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Audit(topic, tt.log, tt.ns)
			if len(got.Examples) > 0 == got.OK() {
				t.Errorf("examples %q for a report with OK() = %v", got.Examples, got.OK())
			}
			got.Examples = nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("Audit = %+v, want %+v", got, tt.want)
			}
			if got.OK() != (got.Lost+got.Duplicated+got.Corrupt+got.Phantom+got.FalseGaps == 0) {
				t.Errorf("OK() = %v for %+v", got.OK(), got)
			}
		})
	}
}

func TestKafkaLoss(t *testing.T) {
	topic := Topic{Records: map[Key][]byte{{0, 0}: []byte("a"), {0, 1}: []byte("b")}}
	acked := map[Key][]byte{{0, 0}: []byte("a"), {0, 1}: []byte("B"), {0, 2}: []byte("c")}
	if missing, differ := KafkaLoss(topic, acked); missing != 1 || differ != 1 {
		t.Errorf("KafkaLoss = %d missing, %d differ; want 1, 1", missing, differ)
	}
}
