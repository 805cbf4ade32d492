package printable_test

import (
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/printable"
)

func TestQuoteAndEscape(t *testing.T) {
	for _, tc := range []struct {
		name, in, quoted, escaped string
	}{
		{"plain", "churn", "churn", "churn"},
		{"spaces and accents", "modèle de churn", "modèle de churn", "modèle de churn"},
		{"empty", "", "", ""},
		{"escape sequence", "a\x1b[2Jb", `"a\x1b[2Jb"`, `a\x1b[2Jb`},
		{"newline", "a\nb", `"a\nb"`, `a\nb`},
		{"tab", "a\tb", `"a\tb"`, `a\tb`},
		{"bidi override", "a\u202eb", `"a\u202eb"`, `a\u202eb`},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`, `a\xffb`},
		{"starts with a quote", `"churn"`, `"\"churn\""`, `"churn"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := printable.Quote(tc.in); got != tc.quoted {
				t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.quoted)
			}
			if got := printable.Escape(tc.in); got != tc.escaped {
				t.Errorf("Escape(%q) = %s, want %s", tc.in, got, tc.escaped)
			}
		})
	}
}
