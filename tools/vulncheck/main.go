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
	"strconv"
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
	if stdlib > 0 {
		goVersion, fixed := stdlibVersions(found)
		if fixed != "" {
			fmt.Fprintf(w, "vulncheck: the standard library of go%s is fixed in go%s: move go.mod's toolchain line there "+
				"(go get toolchain@go%s; make and scripts/ export it as GOTOOLCHAIN)\n", goVersion, fixed, fixed)
		} else {
			fmt.Fprintf(w, "vulncheck: no Go release fixes every finding in the standard library of go%s yet "+
				"(VULNCHECK_STRICT=0 reports them without failing)\n", goVersion)
		}
		if !strict {
			fmt.Fprintln(w, "vulncheck: standard-library findings do not fail the check without VULNCHECK_STRICT=1")
		}
	}
	if modules > 0 || (strict && stdlib > 0) {
		return 1
	}
	return 0
}

// stdlibVersions returns the standard library's version in the findings and
// the highest version that fixes all of them (without the "v"); fixed is
// empty when one of them has no fixed release.
func stdlibVersions(found []called) (goVersion, fixed string) {
	unfixed := false
	for _, c := range found {
		if c.module != "stdlib" {
			continue
		}
		goVersion = strings.TrimPrefix(c.version, "v")
		f := strings.TrimPrefix(c.fixed, "v")
		if f == "" {
			unfixed = true
		} else if fixed == "" || versionLess(fixed, f) {
			fixed = f
		}
	}
	if unfixed {
		return goVersion, ""
	}
	return goVersion, fixed
}

// versionLess compares dotted release numbers (1.26.9 < 1.26.10); a part
// that is not a number (a pre-release's "0-rc") compares as text.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		ai, aerr := strconv.Atoi(as[i])
		bi, berr := strconv.Atoi(bs[i])
		switch {
		case aerr != nil || berr != nil:
			if as[i] != bs[i] {
				return as[i] < bs[i]
			}
		case ai != bi:
			return ai < bi
		}
	}
	return len(as) < len(bs)
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "no fixed version"
	}
	return s
}
