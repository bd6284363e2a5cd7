package devbroker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

// ApplyDiff is what a consumer does with a StateDiff: it returns the state
// after d (see applyDiff), so that a client outside this package (the
// end-to-end join test) rebuilds a run's state exactly as the workload
// computed the state_hash it publishes.
func ApplyDiff(state any, d *dashstreampb.StateDiff) (any, error) { return applyDiff(state, d) }

// applyDiff returns the state after d: its full_state when set, then its
// JSON-patch operations (RFC 6902) applied in order. Maps inside state may be
// modified in place; the result must be used instead of state.
func applyDiff(state any, d *dashstreampb.StateDiff) (any, error) {
	if len(d.GetFullState()) > 0 {
		if err := json.Unmarshal(d.GetFullState(), &state); err != nil {
			return nil, fmt.Errorf("full_state: %w", err)
		}
	}
	for i, op := range d.GetOperations() {
		var err error
		if state, err = applyOp(state, op); err != nil {
			return nil, fmt.Errorf("operation %d (%v %s): %w", i, op.GetOp(), op.GetPath(), err)
		}
	}
	return state, nil
}

func applyOp(doc any, op *dashstreampb.DiffOperation) (any, error) {
	if op.GetEncoding() != dashstreampb.DiffOperation_VALUE_ENCODING_JSON {
		return nil, fmt.Errorf("unsupported value encoding %v", op.GetEncoding())
	}
	path, err := parsePointer(op.GetPath())
	if err != nil {
		return nil, err
	}
	switch op.GetOp() {
	case dashstreampb.DiffOperation_OP_TYPE_ADD, dashstreampb.DiffOperation_OP_TYPE_REPLACE:
		var value any
		if err := json.Unmarshal(op.GetValue(), &value); err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
		return setAt(doc, path, value, op.GetOp() == dashstreampb.DiffOperation_OP_TYPE_ADD)
	case dashstreampb.DiffOperation_OP_TYPE_REMOVE:
		return removeAt(doc, path)
	}
	return nil, fmt.Errorf("unsupported op %v", op.GetOp())
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("json pointer %q does not start with /", p)
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return tokens, nil
}

// pointerToken escapes one key for use in a JSON pointer.
func pointerToken(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

var errNoTarget = errors.New("path does not exist")

// setAt adds (insert into arrays, create or overwrite object members) or
// replaces (target must exist) value at path, returning the new document.
func setAt(doc any, path []string, value any, add bool) (any, error) {
	if len(path) == 0 {
		return value, nil
	}
	return descend(doc, path, func(parent any, key string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			if _, ok := c[key]; !ok && !add {
				return nil, errNoTarget
			}
			c[key] = value
			return c, nil
		case []any:
			return setInArray(c, key, value, add)
		}
		return nil, fmt.Errorf("parent of %q is not a container", key)
	})
}

func setInArray(a []any, key string, value any, add bool) (any, error) {
	if add && key == "-" {
		return append(a, value), nil
	}
	i, err := arrayIndex(a, key, add)
	if err != nil {
		return nil, err
	}
	if !add {
		a[i] = value
		return a, nil
	}
	return append(a[:i], append([]any{value}, a[i:]...)...), nil
}

func removeAt(doc any, path []string) (any, error) {
	if len(path) == 0 {
		return nil, nil
	}
	return descend(doc, path, func(parent any, key string) (any, error) {
		switch c := parent.(type) {
		case map[string]any:
			if _, ok := c[key]; !ok {
				return nil, errNoTarget
			}
			delete(c, key)
			return c, nil
		case []any:
			i, err := arrayIndex(c, key, false)
			if err != nil {
				return nil, err
			}
			return append(c[:i], c[i+1:]...), nil
		}
		return nil, fmt.Errorf("parent of %q is not a container", key)
	})
}

// descend walks to the parent of path's last token, calls leaf on it, and
// stores the (possibly reallocated) container back into its own parent.
func descend(node any, path []string, leaf func(parent any, key string) (any, error)) (any, error) {
	if len(path) == 1 {
		return leaf(node, path[0])
	}
	child, err := childOf(node, path[0])
	if err != nil {
		return nil, err
	}
	if child, err = descend(child, path[1:], leaf); err != nil {
		return nil, err
	}
	switch c := node.(type) {
	case map[string]any:
		c[path[0]] = child
	case []any:
		i, _ := arrayIndex(c, path[0], false)
		c[i] = child
	}
	return node, nil
}

func childOf(node any, key string) (any, error) {
	switch c := node.(type) {
	case map[string]any:
		v, ok := c[key]
		if !ok {
			return nil, errNoTarget
		}
		return v, nil
	case []any:
		i, err := arrayIndex(c, key, false)
		if err != nil {
			return nil, err
		}
		return c[i], nil
	}
	return nil, fmt.Errorf("%q: not a container", key)
}

// arrayIndex parses an array index token; insert allows len(a).
func arrayIndex(a []any, key string, insert bool) (int, error) {
	i, err := strconv.Atoi(key)
	if err != nil || i < 0 || (key != "0" && key[0] == '0') {
		return 0, fmt.Errorf("bad array index %q", key)
	}
	if i > len(a) || (i == len(a) && !insert) {
		return 0, fmt.Errorf("array index %d out of range (len %d)", i, len(a))
	}
	return i, nil
}
