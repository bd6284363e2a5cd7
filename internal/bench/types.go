package bench

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dashflow/dashstream-gateway/internal/filter"
)

// Types-only subscriptions (Config.FilterTypes): every client is filtered
// to message types, and checked for exactly the produced records of those
// types. A message type is the number of the envelope's oneof field that
// holds the body (1..9); a set of them is a mask with bit n for field n.

// messageKinds maps the filter's message type names (docs/PROTOCOL.md §3.8)
// to the envelope's field numbers.
var messageKinds = map[string]protowire.Number{
	"event": 1, "state_diff": 2, "token_chunk": 3, "tool_execution": 4, "checkpoint": 5,
	"metrics": 6, "error": 7, "event_batch": 8, "execution_trace": 9,
}

// jsonKinds maps the body member names of a JSON record frame's message
// (protobuf's JSON names) to the same field numbers.
var jsonKinds = map[string]protowire.Number{
	"event": 1, "stateDiff": 2, "tokenChunk": 3, "toolExecution": 4, "checkpoint": 5,
	"metrics": 6, "error": 7, "eventBatch": 8, "executionTrace": 9,
}

// typesFilter is the resume filter of a types-only subscription.
func typesFilter(types []string) json.RawMessage {
	b, _ := json.Marshal(struct { // a struct of strings always encodes
		Types []string `json:"types"`
	}{types})
	return b
}

// typesMask is the mask of the message types named, checked the way the
// gateway checks the filter.
func typesMask(types []string) (uint16, error) {
	if _, ferr := filter.Parse(typesFilter(types)); ferr != nil {
		return 0, fmt.Errorf("bench: types filter %q: %s", types, ferr.Message)
	}
	var mask uint16
	for _, t := range types {
		n, ok := messageKinds[t]
		if !ok {
			return 0, fmt.Errorf("bench: types filter: %q is not a message type", t)
		}
		mask |= 1 << n
	}
	return mask, nil
}

// bodyKind reads the message type of a plain-framed record without
// decoding it: the number of the envelope's first body field (1..9). It
// allocates nothing.
func bodyKind(v []byte) (protowire.Number, bool) {
	if len(v) == 0 || v[0] != 0x00 {
		return 0, false
	}
	for b := v[1:]; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if typ == protowire.BytesType && num >= 1 && num <= 9 {
			return num, true
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return 0, false
}

// jsonKind reads the message type of a JSON record's message object: the
// name of its first member (the gateway writes one, the body).
func jsonKind(message []byte) (protowire.Number, bool) {
	s := jscan{b: message}
	if !s.begin('{') {
		return 0, false
	}
	key, more, ok := s.member(true, false)
	if !ok || !more {
		return 0, false
	}
	n, ok := jsonKinds[string(key)]
	return n, ok
}

// CheckFilterTypes refuses message type names the gateway's filter would
// refuse (Config.FilterTypes), before anything is started.
func CheckFilterTypes(types []string) error {
	_, err := typesMask(types)
	return err
}
