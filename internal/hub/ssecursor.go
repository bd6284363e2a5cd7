package hub

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/dashflow/dashstream-gateway/internal/wsproto"
)

// An SSE cursor is the id of every event that moves a client's positions
// (docs/PROTOCOL.md §3.9): the whole position vector, so that a browser's
// automatic reconnect with Last-Event-ID resumes exactly. Clients treat it
// as opaque. Its form:
//
//	c1~<resume namespace>~<p>:<o>,<p>:<o>,...
//
// partitions ascending, o the last offset delivered or passed on p (-1:
// nothing yet). A namespace that is not the gateway's makes every listed
// partition stale, as a resume's "namespace" does.
const ssePrefix = "c1~"

// maxSSECursor bounds a cursor before it is parsed (1024 partitions of
// 20-digit offsets fit).
const maxSSECursor = 40 << 10

// position is one partition's entry of the vector.
type position struct {
	p int32
	o int64
}

// cursorVec is a client's position vector in partition order. set and
// append keep it sorted; no map, so writing an id allocates nothing.
type cursorVec []position

// set records o as the position of p.
func (v *cursorVec) set(p int32, o int64) {
	i, found := slices.BinarySearchFunc(*v, p, func(e position, p int32) int { return int(e.p) - int(p) })
	if found {
		(*v)[i].o = o
		return
	}
	*v = slices.Insert(*v, i, position{p, o})
}

// appendID appends the cursor of v in namespace ns.
func (v cursorVec) appendID(dst []byte, ns string) []byte {
	dst = append(dst, ssePrefix...)
	dst = append(dst, ns...)
	dst = append(dst, '~')
	for i, e := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(e.p), 10)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, e.o, 10)
	}
	return dst
}

var errBadCursor = errors.New("cursor is not one this gateway issued")

// parseSSECursor reads a cursor made by appendID into the offsets and
// namespace of a resume.
func parseSSECursor(s string) (offsets map[int32]int64, ns string, err error) {
	if len(s) > maxSSECursor {
		return nil, "", errBadCursor
	}
	rest, ok := strings.CutPrefix(s, ssePrefix)
	if !ok {
		return nil, "", errBadCursor
	}
	i := strings.LastIndexByte(rest, '~')
	if i < 0 {
		return nil, "", errBadCursor
	}
	ns, list := rest[:i], rest[i+1:]
	offsets = map[int32]int64{}
	for list != "" {
		var entry string
		var more bool
		entry, list, more = strings.Cut(list, ",")
		if more && list == "" {
			return nil, "", errBadCursor
		}
		ps, os, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, "", errBadCursor
		}
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if err1 != nil || err2 != nil || p < 0 || o < -1 {
			return nil, "", errBadCursor
		}
		if _, dup := offsets[int32(p)]; dup {
			return nil, "", errBadCursor
		}
		offsets[int32(p)] = o
		if len(offsets) > wsproto.MaxResumePartitions {
			return nil, "", errBadCursor
		}
	}
	return offsets, ns, nil
}
