package chaos

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic is the content of a topic as Kafka holds it.
type Topic struct {
	Records map[Key][]byte
	// Ends are the next offsets (high watermarks) per partition.
	Ends map[int32]int64
}

// ReadTopic reads every partition of topic from its log start to its high
// watermark, directly from the brokers.
func ReadTopic(ctx context.Context, brokers []string, topic string) (Topic, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return Topic{}, fmt.Errorf("chaos: audit client: %w", err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		return Topic{}, fmt.Errorf("chaos: list end offsets of %s: %w", topic, err)
	}
	t := Topic{Records: map[Key][]byte{}, Ends: map[int32]int64{}}
	starts := map[int32]kgo.Offset{}
	var perr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && perr == nil {
			perr = fmt.Errorf("chaos: end offset of %s/%d: %w", topic, o.Partition, o.Err)
		}
		t.Ends[o.Partition] = o.Offset
		starts[o.Partition] = kgo.NewOffset().AtStart()
	})
	if perr != nil {
		return Topic{}, perr
	}
	return t, readAll(ctx, brokers, topic, starts, t)
}

// readAll consumes until every partition reached its end in t.Ends.
func readAll(ctx context.Context, brokers []string, topic string, starts map[int32]kgo.Offset, t Topic) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
	if err != nil {
		return fmt.Errorf("chaos: audit consumer: %w", err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range t.Ends {
			if end > 0 && next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("chaos: read %s: %d of %v: %w", topic, len(t.Records), t.Ends, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset < t.Ends[r.Partition] {
				t.Records[Key{r.Partition, r.Offset}] = r.Value
			}
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		})
	}
	return nil
}

// ClientLog is what one client applied and was told (Client.Log).
type ClientLog struct {
	Name       string
	Deliveries []Delivery
	Announced  []Span
	// DroppedDuplicates are records the gateway sent again at or below the
	// client's cursor (the follower drops them before they are logged).
	DroppedDuplicates int64
}

// Report is the verdict on one client. Every count but Audited and
// Announced must be zero for a correct gateway.
type Report struct {
	Client     string
	Audited    int // records of Kafka the client had to get
	Delivered  int // records it applied (in the audited namespace)
	Lost       int // in Kafka, never delivered, never announced
	Duplicated int // delivered more than once
	Corrupt    int // delivered with bytes that differ from Kafka's
	Phantom    int // delivered but not in Kafka
	Announced  int // offsets announced by gap or skipped
	FalseGaps  int // announced although Kafka still holds the record and it was never delivered
	Examples   []string
}

// OK reports whether the client got exactly what it had to.
func (r Report) OK() bool {
	return r.Lost+r.Duplicated+r.Corrupt+r.Phantom+r.FalseGaps == 0
}

func (r Report) String() string {
	return fmt.Sprintf("client=%s audited=%d delivered=%d lost=%d duplicated=%d corrupt=%d phantom=%d announced=%d false_gaps=%d%s",
		r.Client, r.Audited, r.Delivered, r.Lost, r.Duplicated, r.Corrupt, r.Phantom, r.Announced, r.FalseGaps,
		examples(r.Examples))
}

func examples(ex []string) string {
	if len(ex) == 0 {
		return ""
	}
	return " e.g. " + strings.Join(ex, ", ")
}

// Audit compares one client's log with the topic. Only deliveries and
// announcements of namespace ns count ("" counts all: the topic never changed
// identity). Every record of the topic must have been delivered exactly
// once with equal bytes, or announced by gap/skipped.
func Audit(topic Topic, log ClientLog, ns string) Report {
	r := Report{Client: log.Name, Audited: len(topic.Records), Duplicated: int(log.DroppedDuplicates)}
	if log.DroppedDuplicates > 0 {
		r.example(fmt.Sprintf("%d sent again at or below the cursor", log.DroppedDuplicates))
	}
	seen := make(map[Key]int, len(log.Deliveries))
	for _, d := range log.Deliveries {
		if ns != "" && d.Namespace != ns {
			continue
		}
		r.Delivered++
		seen[d.Key]++
		want, ok := topic.Records[d.Key]
		switch {
		case seen[d.Key] > 1:
			r.Duplicated++
			r.example("duplicate " + d.Key.String())
		case !ok:
			r.Phantom++
			r.example("phantom " + d.Key.String())
		case !bytes.Equal(want, d.Value):
			r.Corrupt++
			r.example("corrupt " + d.Key.String())
		}
	}
	announced := announcedKeys(log.Announced, ns)
	r.Announced = len(announced)
	for _, k := range sortedKeys(topic.Records) {
		if seen[k] > 0 {
			continue
		}
		if announced[k] {
			r.FalseGaps++ // retention never removes anything in the suite's topics
			r.example("announced but held by Kafka " + k.String())
			continue
		}
		r.Lost++
		r.example("lost " + k.String())
	}
	return r
}

func (r *Report) example(s string) {
	if len(r.Examples) < 5 {
		r.Examples = append(r.Examples, s)
	}
}

// announcedKeys expands the spans of namespace ns, bounded: a span longer
// than a million offsets is clipped (no suite topic is that long).
func announcedKeys(spans []Span, ns string) map[Key]bool {
	out := map[Key]bool{}
	for _, s := range spans {
		if ns != "" && s.Namespace != ns {
			continue
		}
		for o := s.From; o <= s.To && o-s.From < 1_000_000; o++ {
			out[Key{s.Partition, o}] = true
		}
	}
	return out
}

func sortedKeys(m map[Key][]byte) []Key {
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return keys
}

// KafkaLoss compares the producer's acknowledged records with the topic:
// acknowledged records Kafka no longer holds, or holds with other bytes (a
// broker fault, not a gateway one, but it would void the audit).
func KafkaLoss(topic Topic, acked map[Key][]byte) (missing, differ int) {
	for k, v := range acked {
		got, ok := topic.Records[k]
		switch {
		case !ok:
			missing++
		case !bytes.Equal(got, v):
			differ++
		}
	}
	return missing, differ
}
