package main

import (
	"io"
	"strings"
)

// testEnv is an env over the given streams and variables (nil: none).
func testEnv(stdin io.Reader, stdout, stderr io.Writer, vars map[string]string) env {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	return env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: func(k string) string { return vars[k] }}
}
