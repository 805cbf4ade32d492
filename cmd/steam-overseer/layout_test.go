package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/testkit"
)

const module = "github.com/steam-overseer/steam-overseer"

// The shipped binary carries no test support, and production packages do
// not lean on the demo: only this command wires it in.
func TestLayout(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", "./cmd/steam-overseer")
	cmd.Dir = testkit.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var pkg struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&pkg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		// Third-party packages count too: go-abnf v0.5.3 shipped fuzz helpers outside _test files.
		if slices.Contains(pkg.Imports, "testing") {
			t.Errorf("%s imports testing into the shipped binary", pkg.ImportPath)
		}
		if !strings.HasPrefix(pkg.ImportPath, module) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg.ImportPath, module), "/")
		if strings.HasPrefix(rel, "testkit") {
			t.Errorf("%s is test support in the shipped binary", pkg.ImportPath)
		}
		demo := rel == "demo" || strings.HasPrefix(rel, "demo/")
		if !demo && (strings.Contains(rel, "fake") || strings.Contains(rel, "fixture")) {
			t.Errorf("%s is demo kit outside demo/", pkg.ImportPath)
		}
		for _, imp := range pkg.Imports {
			if rel == "cmd/steam-overseer" && strings.Contains(imp, "fake") {
				t.Errorf("main imports %s: the demo wires its fake scorer itself", imp)
			}
			if strings.HasPrefix(imp, module+"/demo") && !demo && rel != "cmd/steam-overseer" {
				t.Errorf("production package %s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}
