package devbroker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CanonicalJSON returns the canonical JSON text of v, the input of a
// StateDiff's state_hash (SHA-256): compact, object keys sorted recursively
// (bytewise), numbers and strings written as JavaScript's JSON.stringify
// writes them, so a browser can recompute the hash. v is anything
// encoding/json marshals; pass a json.RawMessage to canonicalize JSON text.
func CanonicalJSON(v any) ([]byte, error) {
	if _, isRaw := v.(json.RawMessage); !isRaw {
		var buf bytes.Buffer
		if err := writeCanonical(&buf, v); err == nil {
			return buf.Bytes(), nil
		}
	}
	// Not a tree of decoded JSON values: let encoding/json say what v is.
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("devbroker: canonical json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("devbroker: canonical json: %w", err)
	}
	var buf bytes.Buffer
	if err := writeCanonical(&buf, tree); err != nil {
		return nil, fmt.Errorf("devbroker: canonical json: %w", err)
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case json.Number:
		return writeNumber(buf, t)
	case float64:
		return writeFloat(buf, t)
	case string:
		writeString(buf, t)
	case []any:
		return writeArray(buf, t)
	case map[string]any:
		return writeObject(buf, t)
	default:
		return fmt.Errorf("unexpected %T", v)
	}
	return nil
}

func writeArray(buf *bytes.Buffer, a []any) error {
	buf.WriteByte('[')
	for i, e := range a {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeCanonical(buf, e); err != nil {
			return err
		}
	}
	buf.WriteByte(']')
	return nil
}

func writeObject(buf *bytes.Buffer, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, k)
		buf.WriteByte(':')
		if err := writeCanonical(buf, m[k]); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

// writeNumber writes integers that fit int64 as integers and everything else
// through float64, which encoding/json formats as ECMAScript does: 1.0 is 1,
// 1e21 is 1e+21. Integers beyond int64 keep their digits.
func writeNumber(buf *bytes.Buffer, n json.Number) error {
	if i, err := n.Int64(); err == nil {
		buf.WriteString(strconv.FormatInt(i, 10))
		return nil
	}
	if isIntegerLiteral(string(n)) {
		buf.WriteString(string(n))
		return nil
	}
	f, err := n.Float64()
	if err != nil {
		return err
	}
	return writeFloat(buf, f)
}

// writeFloat writes f as ECMAScript does (encoding/json follows it); NaN
// and infinities are errors.
func writeFloat(buf *bytes.Buffer, f float64) error {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		buf.WriteString(strconv.FormatInt(int64(f), 10))
		return nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	buf.Write(b)
	return nil
}

func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// writeString escapes as JSON.stringify does: quote, backslash and control
// characters only; everything else is written as UTF-8.
func writeString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			buf.WriteByte('\\')
			buf.WriteRune(r)
		case r == '\b':
			buf.WriteString(`\b`)
		case r == '\f':
			buf.WriteString(`\f`)
		case r == '\n':
			buf.WriteString(`\n`)
		case r == '\r':
			buf.WriteString(`\r`)
		case r == '\t':
			buf.WriteString(`\t`)
		case r < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[r>>4])
			buf.WriteByte(hex[r&0xf])
		default:
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}
