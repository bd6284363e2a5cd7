package check

import (
	"regexp"
	"sort"
	"strings"
)

// The metric names of a PromQL expression, found without the Prometheus
// parser (its module is large, and `promtool check rules` already rejects an
// expression that does not parse): strings, label matchers, ranges and
// grouping label lists are removed first, then every identifier that is not
// a function call, a keyword or a number is a metric name.
var (
	stringLit    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchers     = regexp.MustCompile(`\{[^{}]*\}`)
	ranges       = regexp.MustCompile(`\[[^\[\]]*\]`)
	labelLists   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identifier   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	grafanaVars  = regexp.MustCompile(`\$\{?[a-zA-Z_]+\}?`)
	promqlSyntax = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "e": true,
	}
)

// metricNames returns the sorted metric names expr selects.
func metricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = grafanaVars.ReplaceAllString(s, "5m")
	for prev := ""; prev != s; {
		prev = s
		s = matchers.ReplaceAllString(s, " ")
	}
	s = ranges.ReplaceAllString(s, " ")
	s = labelLists.ReplaceAllString(s, " ")
	seen := map[string]bool{}
	for _, loc := range identifier.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if promqlSyntax[name] || isNumberPart(s, loc[0]) || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") {
			continue
		}
		seen[name] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// isNumberPart reports whether the identifier at i continues a number
// literal such as 1e3 or 0x1f.
func isNumberPart(s string, i int) bool {
	return i > 0 && (s[i-1] >= '0' && s[i-1] <= '9' || s[i-1] == '.')
}
