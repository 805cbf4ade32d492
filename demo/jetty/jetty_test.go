package jetty

import (
	"errors"
	"strings"
	"testing"
)

// Without javac on PATH, Check says so and what to install, before
// anything is built.
func TestCheckWithoutJavac(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Check()
	if !errors.Is(err, ErrMissing) || !strings.HasPrefix(err.Error(), "javac is not installed") {
		t.Fatalf("Check() = %v, want javac missing wrapping %v", err, ErrMissing)
	}
	if _, err := Build(t.TempDir()); !errors.Is(err, ErrMissing) {
		t.Fatalf("Build() = %v, want %v", err, ErrMissing)
	}
}

func TestWrapManifest(t *testing.T) {
	t.Parallel()
	long := "Class-Path: " + strings.Repeat("x", 100)
	for _, tc := range []struct {
		in, want string
	}{
		{"Main-Class: JettyRunner\n", "Main-Class: JettyRunner\n"},
		{long + "\n", long[:72] + "\n " + long[72:] + "\n"},
		{strings.Repeat("y", 144) + "\n", strings.Repeat("y", 72) + "\n " + strings.Repeat("y", 71) + "\n " + "y\n"},
	} {
		got := wrapManifest(tc.in)
		if got != tc.want {
			t.Errorf("wrapManifest(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, l := range strings.Split(got, "\n") {
			if len(l) > 72 {
				t.Errorf("line of %d bytes: %q", len(l), l)
			}
		}
	}
}
