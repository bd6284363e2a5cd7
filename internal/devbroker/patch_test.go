package devbroker

import (
	"encoding/json"
	"testing"

	pb "github.com/dashflow/dashstream-gateway/internal/dashstream/dashstreampb"
)

func TestApplyDiff(t *testing.T) {
	const (
		add     = pb.DiffOperation_OP_TYPE_ADD
		remove  = pb.DiffOperation_OP_TYPE_REMOVE
		replace = pb.DiffOperation_OP_TYPE_REPLACE
	)
	type op struct {
		op    pb.DiffOperation_OpType
		path  string
		value string
	}
	tests := []struct {
		name, doc string
		ops       []op
		want      string // canonical JSON; empty means an error is expected
	}{
		{"add member", `{"a":1}`, []op{{add, "/b", `2`}}, `{"a":1,"b":2}`},
		{"add overwrites member", `{"a":1}`, []op{{add, "/a", `[1]`}}, `{"a":[1]}`},
		{"append", `{"l":[1]}`, []op{{add, "/l/-", `2`}}, `{"l":[1,2]}`},
		{"insert", `{"l":[1,3]}`, []op{{add, "/l/1", `2`}, {add, "/l/0", `0`}}, `{"l":[0,1,2,3]}`},
		{"insert at end", `{"l":[1]}`, []op{{add, "/l/1", `2`}}, `{"l":[1,2]}`},
		{"replace nested", `{"a":{"b":[{"c":1}]}}`, []op{{replace, "/a/b/0/c", `"x"`}}, `{"a":{"b":[{"c":"x"}]}}`},
		{"remove member", `{"a":1,"b":2}`, []op{{remove, "/a", ""}}, `{"b":2}`},
		{"remove element", `{"l":[1,2,3]}`, []op{{remove, "/l/1", ""}}, `{"l":[1,3]}`},
		{"escaped pointer", `{"a/b":{"m~n":1}}`, []op{{replace, "/a~1b/m~0n", `2`}}, `{"a/b":{"m~n":2}}`},
		{"replace root", `{"a":1}`, []op{{replace, "", `[true]`}}, `[true]`},
		{"replace missing", `{"a":1}`, []op{{replace, "/b", `1`}}, ""},
		{"remove missing", `{"a":1}`, []op{{remove, "/b", ""}}, ""},
		{"index out of range", `{"l":[1]}`, []op{{add, "/l/2", `1`}}, ""},
		{"leading zero index", `{"l":[1,2]}`, []op{{replace, "/l/01", `1`}}, ""},
		{"missing parent", `{}`, []op{{add, "/a/b", `1`}}, ""},
		{"no leading slash", `{}`, []op{{add, "a", `1`}}, ""},
		{"bad value", `{}`, []op{{add, "/a", `{`}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			diff := &pb.StateDiff{}
			for _, o := range tc.ops {
				diff.Operations = append(diff.Operations, diffOp(o.op, o.path, []byte(o.value)))
			}
			got, err := applyDiff(doc, diff)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("want error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if canon, _ := CanonicalJSON(got); string(canon) != tc.want {
				t.Fatalf("got %s, want %s", canon, tc.want)
			}
		})
	}
}

func TestApplyDiffFullState(t *testing.T) {
	diff := &pb.StateDiff{
		FullState:  []byte(`{"a":1}`),
		Operations: []*pb.DiffOperation{diffOp(pb.DiffOperation_OP_TYPE_ADD, "/b", []byte(`2`))},
	}
	got, err := applyDiff(map[string]any{"old": true}, diff)
	if err != nil {
		t.Fatal(err)
	}
	if canon, _ := CanonicalJSON(got); string(canon) != `{"a":1,"b":2}` {
		t.Fatalf("got %s", canon)
	}
}

func TestApplyDiffRejectsNonJSONEncoding(t *testing.T) {
	op := diffOp(pb.DiffOperation_OP_TYPE_ADD, "/a", []byte{0x01})
	op.Encoding = pb.DiffOperation_VALUE_ENCODING_MSGPACK.Enum()
	if _, err := applyDiff(map[string]any{}, &pb.StateDiff{Operations: []*pb.DiffOperation{op}}); err == nil {
		t.Fatal("want error for msgpack value")
	}
}
