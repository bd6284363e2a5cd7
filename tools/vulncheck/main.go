// Command vulncheck reads govulncheck's JSON stream (-format json) on stdin
// and decides: it exits 1 when the code calls a vulnerable symbol of a
// required module, and reports (without failing) vulnerable symbols of the
// Go standard library, whose fix is a newer Go toolchain rather than a
// change to this repository. VULNCHECK_STRICT=1 fails on those too.
//
//	go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -format json ./... | go run ./tools/vulncheck
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

type finding struct {
	OSV          string  `json:"osv"`
	FixedVersion string  `json:"fixed_version"`
	Trace        []frame `json:"trace"`
}

type message struct {
	Finding *finding `json:"finding"`
	OSV     *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
}

// called is one vulnerability the code reaches, with the symbol it calls.
type called struct {
	id, module, version, fixed, symbol, summary string
}

func main() {
	found, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	os.Exit(report(os.Stderr, found, os.Getenv("VULNCHECK_STRICT") == "1"))
}

// read collects, per vulnerability, the first symbol-level finding.
func read(r io.Reader) ([]called, error) {
	dec := json.NewDecoder(r)
	summaries := map[string]string{}
	byID := map[string]called{}
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck output: %w", err)
		}
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		f := m.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue // module- or package-level: imported, not called
		}
		if _, seen := byID[f.OSV]; seen {
			continue
		}
		top := f.Trace[0]
		sym := top.Function
		if top.Receiver != "" {
			sym = top.Receiver + "." + sym
		}
		byID[f.OSV] = called{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion, symbol: top.Package + "." + sym}
	}
	out := make([]called, 0, len(byID))
	for _, c := range byID {
		c.summary = summaries[c.id]
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// report prints the findings and returns the exit status.
func report(w io.Writer, found []called, strict bool) int {
	var modules, stdlib int
	for _, c := range found {
		kind := "FAIL"
		if c.module == "stdlib" {
			stdlib++
			if !strict {
				kind = "warn"
			}
		} else {
			modules++
		}
		fmt.Fprintf(w, "vulncheck: %s %s in %s@%s (fixed in %s), reached symbol %s: %s\n",
			kind, c.id, c.module, c.version, orNone(c.fixed), c.symbol, c.summary)
	}
	fmt.Fprintf(w, "vulncheck: %d called vulnerabilities in required modules, %d in the standard library\n", modules, stdlib)
	if stdlib > 0 && !strict {
		fmt.Fprintln(w, "vulncheck: standard-library findings are fixed by a newer Go toolchain (build releases with it); they do not fail the check")
	}
	if modules > 0 || (strict && stdlib > 0) {
		return 1
	}
	return 0
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "no fixed version"
	}
	return s
}
