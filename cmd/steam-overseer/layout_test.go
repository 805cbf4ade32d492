package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
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

// The packages that wait on processes run their tests side by side: one
// test left serial adds its whole wait to ./scripts/test. Only a test that
// changes the process's environment (t.Setenv) cannot.
func TestWaitingTestsRunInParallel(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"cmd/steam-overseer", "remediate", "internal/exitwatch", "e2e", "demo", "testkit"} {
		files, err := filepath.Glob(filepath.Join(testkit.RepoRoot(), dir, "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("test files of %s: %v", dir, err)
		}
		for _, path := range files {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Name.Name == "TestMain" || len(fn.Body.List) == 0 {
					continue
				}
				if !callsParallel(fn.Body.List[0]) && !setsEnv(fn) {
					t.Errorf("%s: %s does not start with t.Parallel()", filepath.Join(dir, filepath.Base(path)), fn.Name.Name)
				}
			}
		}
	}
}

func callsParallel(stmt ast.Stmt) bool {
	expr, ok := stmt.(*ast.ExprStmt)
	if !ok {
		return false
	}
	call, ok := expr.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Parallel"
}

func setsEnv(fn *ast.FuncDecl) bool {
	found := false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Setenv" {
			found = true
		}
		return !found
	})
	return found
}
