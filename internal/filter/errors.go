package filter

import "github.com/dashflow/dashstream-gateway/internal/wsproto"

// Error is a filter the client must correct. Code is the error frame's code,
// one of wsproto.CodeFilterInvalid and wsproto.CodeFilterTooManyThreads, and
// Message says which field and value were refused, bounded in length. The
// hub answers with wsproto.NewError(e.Code, e.Message) and refuses the
// resume: a subscription never proceeds with a filter other than the one
// the client asked for.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "filter: " + e.Code + ": " + e.Message }

func invalid(msg string) *Error {
	return &Error{Code: wsproto.CodeFilterInvalid, Message: msg}
}
