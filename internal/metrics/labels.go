package metrics

import (
	"sync"
	"sync/atomic"
)

// labelOther replaces label values beyond a label's budget.
const labelOther = "other"

// maxLabelValues is how many distinct values one label may take; maxLabelLen
// bounds one value. Callers pass constants, so this only guards mistakes.
const (
	maxLabelValues = 32
	maxLabelLen    = 64
)

// bound admits the first maxLabelValues distinct values of one label.
type bound struct {
	seen sync.Map // string -> struct{}
	n    atomic.Int32
}

func newLabelGuards() map[string]*bound {
	g := map[string]*bound{}
	for _, name := range []string{"error_type", "kafka_error_type", "reason", "reject_reason", "tier"} {
		g[name] = &bound{}
	}
	return g
}

// admit returns v when it is known or fits the budget, else labelOther.
func (b *bound) admit(v string) string {
	if len(v) == 0 || len(v) > maxLabelLen {
		return labelOther
	}
	if _, ok := b.seen.Load(v); ok {
		return v
	}
	if b.n.Add(1) > maxLabelValues {
		b.n.Add(-1)
		return labelOther
	}
	if _, loaded := b.seen.LoadOrStore(v, struct{}{}); loaded {
		b.n.Add(-1)
	}
	return v
}

// label bounds the value v of the guarded label name.
func (m *Metrics) label(name, v string) string {
	return m.labels[name].admit(v)
}
