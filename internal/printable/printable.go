// Package printable keeps text others wrote (Steam's names, archive paths)
// from acting on the terminal; fully printable text is left alone.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Quote returns s, or strconv.Quote(s) when s holds an unprintable rune or
// starts with a quote.
func Quote(s string) string {
	if Escape(s) == s && !strings.HasPrefix(s, `"`) {
		return s
	}
	return strconv.Quote(s)
}

// Escape is for text inside a longer sentence.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}
