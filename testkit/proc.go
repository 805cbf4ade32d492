package testkit

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ProcFixtureHome is the Steam home that testdata/proc's command lines name.
const ProcFixtureHome = "/opt/steam"

// ProcFixture copies testdata/proc (a procfs tree of fixed processes) into a
// temp folder the test may change, with ProcFixtureHome in its command lines
// and cwd links moved to home ("" keeps it).
func ProcFixture(t testing.TB, home string) string {
	t.Helper()
	if home == "" {
		home = ProcFixtureHome
	}
	src := filepath.Join(RepoRoot(), "testdata", "proc")
	dst := filepath.Join(t.TempDir(), "proc")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(strings.Replace(target, ProcFixtureHome, home, 1), to)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "cmdline" {
			b = bytes.ReplaceAll(b, []byte(ProcFixtureHome), []byte(home))
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
