package dashboards

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// Prometheus' own PromQL parser is not among the module's dependencies, and
// the lint rules need only the selectors of a query: this scanner finds each
// one with its matchers, its range and the function it is an argument of.

// selector is one vector selector of a query.
type selector struct {
	metric   string // the name, or the __name__ matcher's value
	matchers []matcher
	rng      string // what is between [ and ], for a range selector
	fn       string // the function whose argument it is directly, or ""
}

type matcher struct{ label, op, value string }

func (s selector) matcher(label string) (matcher, bool) {
	for _, m := range s.matchers {
		if m.label == label {
			return m, true
		}
	}
	return matcher{}, false
}

func (s selector) String() string {
	var ms []string
	for _, m := range s.matchers {
		ms = append(ms, fmt.Sprintf("%s%s%q", m.label, m.op, m.value))
	}
	out := s.metric + "{" + strings.Join(ms, ", ") + "}"
	if s.rng != "" {
		out += "[" + s.rng + "]"
	}
	return out
}

type tokenKind int

const (
	tokIdent tokenKind = iota
	tokNumber
	tokString
	tokMatchers // {...}, already split into matchers
	tokRange    // [...]
	tokLParen
	tokRParen
	tokOther // operators and commas
)

type token struct {
	kind     tokenKind
	text     string
	matchers []matcher
}

// keywords are identifiers that are neither metric names nor functions.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// groupings take a parenthesised list of label names.
var groupings = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isIdentStart(r byte) bool { return r == '_' || r == ':' || unicode.IsLetter(rune(r)) }
func isIdentChar(r byte) bool  { return isIdentStart(r) || unicode.IsDigit(rune(r)) }

func tokenize(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(q) && isIdentChar(q[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: q[i:j]})
			i = j
		case unicode.IsDigit(rune(c)) || c == '.':
			j := i
			for j < len(q) && (isIdentChar(q[j]) || q[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: q[i:j]})
			i = j
		case c == '"' || c == '\'' || c == '`':
			s, n, err := readString(q[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, text: s})
			i += n
		case c == '{':
			ms, n, err := readMatchers(q[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokMatchers, matchers: ms})
			i += n
		case c == '[':
			j := strings.IndexByte(q[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			toks = append(toks, token{kind: tokRange, text: strings.TrimSpace(q[i+1 : i+j])})
			i += j + 1
		case c == '(':
			toks = append(toks, token{kind: tokLParen, text: "("})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, text: ")"})
			i++
		default:
			toks = append(toks, token{kind: tokOther, text: string(c)})
			i++
		}
	}
	return toks, nil
}

// readString reads a quoted PromQL string at the start of s and returns its
// value and the length read.
func readString(s string) (string, int, error) {
	quote := s[0]
	var sb strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == quote:
			return sb.String(), i + 1, nil
		case s[i] == '\\' && quote != '`' && i+1 < len(s):
			i++
			sb.WriteByte(s[i])
		default:
			sb.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string %s", s)
}

// readMatchers reads {label op "value", ...} at the start of s.
func readMatchers(s string) ([]matcher, int, error) {
	var ms []matcher
	i := 1
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == ',') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unclosed { in %s", s)
		}
		if s[i] == '}' {
			return ms, i + 1, nil
		}
		j := i
		for j < len(s) && isIdentChar(s[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("expected a label name at %q", s[i:])
		}
		label := s[i:j]
		i = j
		for i < len(s) && s[i] == ' ' {
			i++
		}
		var op string
		for _, candidate := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(s[i:], candidate) {
				op = candidate
				break
			}
		}
		if op == "" {
			return nil, 0, fmt.Errorf("expected a matcher operator after %s", label)
		}
		i += len(op)
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || !strings.ContainsRune("\"'`", rune(s[i])) {
			return nil, 0, fmt.Errorf("expected a quoted value for %s", label)
		}
		v, n, err := readString(s[i:])
		if err != nil {
			return nil, 0, err
		}
		i += n
		ms = append(ms, matcher{label, op, v})
	}
}

// selectors returns every vector selector of the PromQL expression q.
func selectors(q string) ([]selector, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	// One frame per open parenthesis: the function it calls ("" for plain
	// parentheses) and whether it holds label names rather than an
	// expression.
	type frame struct {
		fn       string
		grouping bool
	}
	var stack []frame
	var out []selector
	next := func(i int, k tokenKind) bool { return i+1 < len(toks) && toks[i+1].kind == k }
	// An aggregation may put its clause first: sum by (le) (...).
	aggregationClause := func(i int) bool {
		return i < len(toks) && toks[i].kind == tokIdent && (toks[i].text == "by" || toks[i].text == "without")
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		inGrouping := len(stack) > 0 && stack[len(stack)-1].grouping
		switch t.kind {
		case tokLParen:
			f := frame{}
			if i > 0 && toks[i-1].kind == tokIdent {
				prev := toks[i-1].text
				f.grouping = groupings[prev]
				if !keywords[prev] {
					f.fn = prev
				}
			}
			stack = append(stack, f)
		case tokRParen:
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced ) in %q", q)
			}
			stack = stack[:len(stack)-1]
		case tokIdent, tokMatchers:
			if inGrouping || (t.kind == tokIdent && (keywords[t.text] || next(i, tokLParen) || aggregationClause(i+1))) {
				continue
			}
			s := selector{}
			if t.kind == tokIdent {
				s.metric = t.text
				if next(i, tokMatchers) {
					i++
					s.matchers = toks[i].matchers
				}
			} else {
				s.matchers = t.matchers
				if m, ok := s.matcher("__name__"); ok {
					s.metric = m.value
				}
			}
			if next(i, tokRange) {
				i++
				s.rng = toks[i].text
			}
			if len(stack) > 0 {
				s.fn = stack[len(stack)-1].fn
			}
			out = append(out, s)
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("unbalanced ( in %q", q)
	}
	return out, nil
}

// metricNames returns the metric names a selector may match: its name, or
// the alternatives of a __name__=~"a|b" matcher.
func (s selector) metricNames() []string {
	if m, ok := s.matcher("__name__"); ok && m.op == "=~" {
		return strings.Split(m.value, "|")
	}
	if s.metric == "" {
		return nil
	}
	return []string{s.metric}
}

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		want  []selector
	}{
		{"bare", `up`, []selector{{metric: "up"}}},
		{"matchers", `up{job=~"$job", instance!="a,b}"}`, []selector{{metric: "up",
			matchers: []matcher{{"job", "=~", "$job"}, {"instance", "!=", "a,b}"}}}}},
		{"range in a function", `sum by (le, instance) (rate(x_bucket{job="j"}[$__rate_interval]))`, []selector{{metric: "x_bucket",
			matchers: []matcher{{"job", "=", "j"}}, rng: "$__rate_interval", fn: "rate"}}},
		{"grouping after the aggregation", `sum(increase(a_total[5m])) by (deployment)`, []selector{{metric: "a_total", rng: "5m", fn: "increase"}}},
		{"binary operators with matching", `a == 0 and on (job, instance) group_left (x) b{state="started"}`, []selector{
			{metric: "a"}, {metric: "b", matchers: []matcher{{"state", "=", "started"}}}}},
		{"name matcher", `{__name__=~"a|b", job="j"}`, []selector{{metric: "a|b",
			matchers: []matcher{{"__name__", "=~", "a|b"}, {"job", "=", "j"}}}}},
		{"numbers and functions", `histogram_quantile(0.9, x) * 1000 - time() + absent(y)`, []selector{
			{metric: "x", fn: "histogram_quantile"}, {metric: "y", fn: "absent"}}},
		{"plain parentheses", `(a_total)`, []selector{{metric: "a_total"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selectors(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("selectors(%q)\n got %+v\nwant %+v", tc.query, got, tc.want)
			}
		})
	}
}

func TestSelectorsRejectsMalformed(t *testing.T) {
	for _, q := range []string{`up{job="a"`, `rate(up[5m]`, `sum(up))`, `up{job}`, `up{job="a}`} {
		t.Run(q, func(t *testing.T) {
			if s, err := selectors(q); err == nil {
				t.Errorf("selectors(%q) = %v, want an error", q, s)
			}
		})
	}
}
