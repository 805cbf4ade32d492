package main

import (
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestNamesReachTerminalEscaped: a deployment name holding an escape
// sequence and a line break is printed quoted by status and reconcile,
// never raw; a plain name stays as it is.
func TestNamesReachTerminalEscaped(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	const evil = "evil\x1b[2J\nFAKE"
	h.Add(testkit.Spec{Name: evil, LogicalName: "evil"})
	h.Add(testkit.Spec{Name: "churn model", LogicalName: "churn"})
	home := "--steam.home=" + h.Home.Dir
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status", []string{"status", home}},
		{"reconcile dry run", []string{"reconcile", "--dry-run", home, "--java.path=" + h.Java}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, out, stderr := runBinary(t, tc.args...)
			if strings.ContainsAny(out, "\x1b") || strings.Contains(out, "\nFAKE") {
				t.Errorf("%s printed the name raw:\n%q", tc.name, out)
			}
			for _, want := range []string{`"evil\x1b[2J\nFAKE"`, "  churn model  "} {
				if !strings.Contains(out, want) {
					t.Errorf("%s output lacks %s:\n%s%s", tc.name, want, out, stderr)
				}
			}
		})
	}
}
