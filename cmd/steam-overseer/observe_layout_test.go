package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestOneObservationPath: outside remediate and procid, only
// internal/observe inspects a process (issue 17), so that the exporter's
// series, the prober, status and the exit watch agree on what runs.
func TestOneObservationPath(t *testing.T) {
	t.Parallel()
	root := testkit.RepoRoot()
	allowed := []string{"remediate", "internal/procid", "internal/observe"}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			for _, a := range allowed {
				if rel == a || strings.HasPrefix(rel, ".") && rel != "." {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), ".Inspect(") {
			t.Errorf("%s inspects processes itself: use internal/observe", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
