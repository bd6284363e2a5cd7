package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// env is what a command reads and writes besides its arguments: the
// process's standard streams and environment, or a test's.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func osEnv() env {
	return env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
}

// helpText is a command's help. Every command prints it the same way (see
// write) for `dashstream help CMD`, `dashstream CMD --help` and `-h`.
type helpText struct {
	name     string   // the subcommand
	args     string   // what follows "dashstream <name>" in the usage line
	summary  string   // one line, also listed by `dashstream help`
	about    string   // optional paragraphs after the summary
	flagNote string   // optional lines under "Flags:"
	examples []string // command lines, 2 or 3
}

// write prints the help: usage line, summary, details, flags, examples.
func (h *helpText) write(w io.Writer, flags func(io.Writer)) {
	fmt.Fprintf(w, "Usage: dashstream %s %s\n\n%s\n", h.name, h.args, h.summary)
	if h.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(h.about))
	}
	fmt.Fprintln(w, "\nFlags:")
	if h.flagNote != "" {
		fmt.Fprintf(w, "  %s\n", h.flagNote)
	}
	flags(w)
	fmt.Fprintln(w, "\nExamples:")
	for _, e := range h.examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

// usageError prints the one-line error of a bad invocation and returns the
// usage-error exit status.
func (h *helpText) usageError(w io.Writer, format string, a ...any) int {
	fmt.Fprintf(w, "dashstream %s: %s (see 'dashstream %s --help')\n", h.name, fmt.Sprintf(format, a...), h.name)
	return 2
}

// flagSet is a subcommand's flag set: help goes to stdout, a bad flag is one
// line on stderr.
type flagSet struct {
	*flag.FlagSet
	help *helpText
	// envOf names the environment variable a flag falls back to, for help.
	envOf map[string]string
}

func newFlagSet(h *helpText) *flagSet {
	fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, help: h, envOf: map[string]string{}}
}

// parse parses args. It returns -1 to go on, or the exit status: 0 after
// printing the help for -h/--help, 2 after a one-line error for a bad flag,
// or for any argument left when maxArgs is 0 (-1: any number).
func (fs *flagSet) parse(args []string, e env, maxArgs int) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.help.write(e.stdout, fs.writeFlags)
			return 0
		}
		return fs.help.usageError(e.stderr, "%v", err)
	}
	if maxArgs == 0 && fs.NArg() > 0 {
		return fs.help.usageError(e.stderr, "unexpected argument %q", fs.Arg(0))
	}
	return -1
}

// given reports which flags were set on the command line.
func (fs *flagSet) given() map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// writeFlags lists the flags like config.Usage lists the gateway's:
//
//	--url (DASHSTREAM_URL, default "ws://127.0.0.1:3002/ws")
//	    gateway WebSocket URL
func (fs *flagSet) writeFlags(w io.Writer) {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		fmt.Fprintln(w, "  (none besides --help)")
	}
	fs.VisitAll(func(f *flag.Flag) {
		var meta []string
		if v := fs.envOf[f.Name]; v != "" {
			meta = append(meta, v)
		}
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			meta = append(meta, fmt.Sprintf("default %q", f.DefValue))
		}
		line := "  --" + f.Name
		if len(meta) > 0 {
			line += " (" + strings.Join(meta, ", ") + ")"
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, f.Usage)
	})
}
