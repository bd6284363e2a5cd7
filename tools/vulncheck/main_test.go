package main

import (
	"io"
	"strings"
	"testing"
)

const (
	stdlibCalled = `{"osv":{"id":"GO-1","summary":"std bug"}}
{"finding":{"osv":"GO-1","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Get"},{"module":"example.com/m","function":"main"}]}}
`
	moduleCalled = `{"osv":{"id":"GO-2","summary":"lib bug"}}
{"finding":{"osv":"GO-2","fixed_version":"v1.2.3","trace":[{"module":"example.com/lib","version":"v1.2.0","package":"example.com/lib","function":"Parse","receiver":"*Parser"}]}}
{"finding":{"osv":"GO-2","fixed_version":"v1.2.3","trace":[{"module":"example.com/lib","version":"v1.2.0","package":"example.com/lib","function":"Parse","receiver":"*Parser"}]}}
`
	// Two standard-library findings fixed in different releases, and one
	// without any fixed release.
	stdlibTwoFixes = `{"finding":{"osv":"GO-4","fixed_version":"v1.26.10","trace":[{"module":"stdlib","version":"v1.26.8","package":"crypto/x509","function":"Verify","receiver":"*Certificate"}]}}
{"finding":{"osv":"GO-5","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Get"}]}}
`
	stdlibUnfixed = `{"finding":{"osv":"GO-6","trace":[{"module":"stdlib","version":"v1.27.3","package":"net/http","function":"Get"}]}}
`
	moduleImportedOnly = `{"finding":{"osv":"GO-3","fixed_version":"v2.0.0","trace":[{"module":"example.com/other","version":"v1.0.0"}]}}
{"finding":{"osv":"GO-3","fixed_version":"v2.0.0","trace":[{"module":"example.com/other","version":"v1.0.0","package":"example.com/other"}]}}
`
)

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		strict bool
		want   int
		calls  int
	}{
		{"nothing", "", false, 0, 0},
		{"stdlib only warns", stdlibCalled, false, 0, 1},
		{"stdlib fails when strict", stdlibCalled, true, 1, 1},
		{"a called module fails", moduleCalled, false, 1, 1},
		{"an imported, uncalled module passes", moduleImportedOnly, false, 0, 0},
		{"mixed", stdlibCalled + moduleCalled + moduleImportedOnly, false, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, err := read(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != tc.calls {
				t.Fatalf("found %d called vulnerabilities, want %d: %+v", len(found), tc.calls, found)
			}
			if got := report(io.Discard, found, tc.strict); got != tc.want {
				t.Fatalf("exit %d, want %d", got, tc.want)
			}
		})
	}
}

func TestReportNamesTheSymbol(t *testing.T) {
	found, err := read(strings.NewReader(moduleCalled))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	report(&b, found, false)
	for _, want := range []string{"FAIL GO-2", "example.com/lib@v1.2.0", "fixed in v1.2.3", "example.com/lib.*Parser.Parse", "lib bug"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestBadInput(t *testing.T) {
	if _, err := read(strings.NewReader("{not json")); err == nil {
		t.Fatal("no error for malformed input")
	}
}

func TestStdlibNamesTheToolchainThatFixesIt(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		strict   bool
		want     []string
	}{
		{"strict", stdlibTwoFixes, true, []string{
			"FAIL GO-4", "FAIL GO-5", "0 called vulnerabilities in required modules, 2 in the standard library",
			"standard library of go1.26.8 is fixed in go1.26.10", "go get toolchain@go1.26.10",
		}},
		{"reported", stdlibTwoFixes, false, []string{
			"warn GO-4", "fixed in go1.26.10", "do not fail the check without VULNCHECK_STRICT=1",
		}},
		{"no fix yet", stdlibUnfixed, true, []string{
			"FAIL GO-6", "no fixed version", "no Go release fixes every finding in the standard library of go1.27.3",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, err := read(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			code := report(&b, found, tc.strict)
			if want := map[bool]int{true: 1, false: 0}[tc.strict]; code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.26.9", "1.26.10", true},
		{"1.26.10", "1.26.9", false},
		{"1.26.10", "1.27.0", true},
		{"1.27", "1.27.1", true},
		{"1.27.3", "1.27.3", false},
		{"1.27.0-rc.1", "1.27.0-rc.2", true},
	} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
