// Package printable keeps text that others wrote (names in Steam's database,
// paths in a backup archive) from acting on the terminal it is printed to:
// an ESC would start a control sequence, a newline forge a line.
//
// Text that is entirely printable is left alone, so that the names an
// operator sees match Steam's UI and grep; only text holding something
// unprintable is escaped, in Go's strconv.Quote notation.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Quote returns s unchanged when every rune of it is printable, and
// strconv.Quote(s) otherwise. A name starting with a double quote is quoted
// too, so that a quoted name in a table is never one Steam holds verbatim.
func Quote(s string) string {
	if Escape(s) == s && !strings.HasPrefix(s, `"`) {
		return s
	}
	return strconv.Quote(s)
}

// Escape replaces each unprintable rune of s (control characters,
// invisible formatting such as a bidirectional override, invalid UTF-8)
// by its Go escape, for text embedded in a longer sentence, such as an
// error message, that cannot be quoted as a whole.
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
