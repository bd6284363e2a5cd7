package main

import (
	"io"
	"strings"
	"sync"
)

// testEnv is an env over the given streams and variables (nil: none).
func testEnv(stdin io.Reader, stdout, stderr io.Writer, vars map[string]string) env {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	return env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: func(k string) string { return vars[k] }}
}

// syncBuffer is a strings.Builder safe for the concurrent writers of a
// running gateway (its logger, the demo announcement).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
