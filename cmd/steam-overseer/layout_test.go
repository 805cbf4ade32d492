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
		if !strings.HasPrefix(pkg.ImportPath, module) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg.ImportPath, module), "/")
		if slices.Contains(pkg.Imports, "testing") || strings.HasPrefix(rel, "testkit") {
			t.Errorf("%s is test support in the shipped binary", pkg.ImportPath)
		}
		demo := rel == "demo" || strings.HasPrefix(rel, "demo/")
		if !demo && (strings.Contains(rel, "fake") || strings.Contains(rel, "fixture")) {
			t.Errorf("%s is demo kit outside demo/", pkg.ImportPath)
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, module+"/demo") && !demo && rel != "cmd/steam-overseer" {
				t.Errorf("production package %s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}
