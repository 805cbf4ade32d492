package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestStateDatabaseOfAnotherHome: two Steam homes pointed at one
// --state.path would take each other's PIDs, restarts and backoff. The
// first home to use it owns it; every command on the other home refuses
// it with a sentence naming both homes. A state database of an older
// version, which records no home, adopts the first home that writes it.
func TestStateDatabaseOfAnotherHome(t *testing.T) {
	t.Parallel()
	a, b := testkit.NewHome(t), testkit.NewHome(t)
	statePath := filepath.Join(t.TempDir(), "shared.db")
	stateFlag := "--state.path=" + statePath
	reconcileOnce := func(h *testkit.Home) (int, string, string) {
		return runBinary(t, "reconcile", "--once", "--steam.home="+h.Home.Dir, stateFlag, "--java.path="+h.Java)
	}
	if code, out, stderr := reconcileOnce(a); code != 0 {
		t.Fatalf("first use by home A: exit %d\n%s%s", code, out, stderr)
	}
	refused := func(t *testing.T, owner, other *testkit.Home) {
		t.Helper()
		home := "--steam.home=" + other.Home.Dir
		want := "belongs to the Steam home " + owner.Home.Dir + ", not to " + other.Home.Dir
		for _, args := range [][]string{
			{"reconcile", "--once", home, stateFlag, "--java.path=" + other.Java},
			{"reconcile", "--dry-run", home, stateFlag, "--java.path=" + other.Java},
			{"status", home, stateFlag},
			{"backup", home, stateFlag, "--output=" + t.TempDir()},
		} {
			code, out, stderr := runBinary(t, args...)
			if code != 1 || !isFailureSentence(lastLine(stderr), want) {
				t.Errorf("%s: exit %d, want 1 with %q\n%s%s", strings.Join(args[:2], " "), code, want, out, stderr)
			}
		}
		for _, args := range [][]string{
			{"exporter", home, stateFlag, "--web.listen-address=127.0.0.1:0"},
			{"remediator", home, stateFlag, "--web.listen-address=127.0.0.1:0", "--java.path=" + other.Java},
		} {
			p := startSubprocess(t, nil, args...)
			if code := p.exitCode(t); code != 1 || !isFailureSentence(lastLine(p.stderr.String()), want) {
				t.Errorf("%s: exit %d, want 1 with %q\n%s", args[0], code, want, p.stderr.String())
			}
		}
	}
	t.Run("owned by A, used by B", func(t *testing.T) { refused(t, a, b) })
	if code, out, stderr := runBinary(t, "status", "--steam.home="+a.Home.Dir, stateFlag); code != 0 {
		t.Errorf("status of the owner: exit %d\n%s%s", code, out, stderr)
	}

	// As written by a version that recorded no home.
	db, err := sqlitefile.Open(statePath, sqlitefile.Options{Mode: sqlitefile.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE steam_home`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if code, out, stderr := reconcileOnce(b); code != 0 {
		t.Fatalf("home B adopting an older state database: exit %d\n%s%s", code, out, stderr)
	}
	t.Run("older database adopted by B, used by A", func(t *testing.T) { refused(t, b, a) })
}
