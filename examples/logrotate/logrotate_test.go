// Package logrotate holds the logrotate rule for deployment logs; its test
// runs the real logrotate on it, from a log folder as the unit does.
package logrotate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// setup writes a log folder with deployment-7.log holding content; it
// returns the log's path and the shipped rule's absolute path. The rule
// runs unchanged, from the log folder, as steam-overseer-logrotate@.service
// runs it.
func setup(t *testing.T, content string) (log, conf string) {
	t.Helper()
	logDir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(logDir, "deployment-7.log")
	if err := os.WriteFile(log, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, err := filepath.Abs("steam-overseer")
	if err != nil {
		t.Fatal(err)
	}
	return log, conf
}

// logrotate runs the real logrotate with args in the folder of log.
func logrotate(t *testing.T, log string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testkit.RequireTool(t, "logrotate"), args...)
	cmd.Dir = filepath.Dir(log)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRuleHoldsNoPath: the Steam home is said once, in the units' instance
// name; a path in the rule would be a second place to change.
func TestRuleHoldsNoPath(t *testing.T) {
	b, err := os.ReadFile("steam-overseer")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && line[0] != '#' && strings.Contains(line, "/") {
			t.Errorf("the rule names a path: %q", line)
		}
	}
}

// TestRuleDebug is logrotate's own check of the rule: --debug parses it and
// says what it would do, changing nothing.
func TestRuleDebug(t *testing.T) {
	log, conf := setup(t, "Started @1234ms\n")
	out, err := logrotate(t, log, "--debug", "--force", "--state", filepath.Join(t.TempDir(), "state"), conf)
	if err != nil {
		t.Fatalf("logrotate --debug: %v\n%s", err, out)
	}
	for _, want := range []string{"considering log deployment-7.log", "copying deployment-7.log", "truncating deployment-7.log"} {
		if !strings.Contains(out, want) {
			t.Errorf("logrotate --debug does not say %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(log); string(b) != "Started @1234ms\n" {
		t.Errorf("--debug changed the log: %q", b)
	}
}

// TestRuleRotatesAnOpenLog rotates the log of a process that keeps writing
// to it through one descriptor opened with O_APPEND, as a deployment's java
// does: the old lines move to deployment-7.log.1, and the next line lands
// at the start of the emptied file, not after a hole as long as the old
// file.
func TestRuleRotatesAnOpenLog(t *testing.T) {
	old := strings.Repeat("old line of a deployment's log\n", 1000)
	log, conf := setup(t, old)
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// --force: the rule is daily, and the file is seconds old.
	out, err := logrotate(t, log, "--verbose", "--force", "--state", filepath.Join(t.TempDir(), "state"), conf)
	if err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	if _, err := f.WriteString("new line after rotation\n"); err != nil {
		t.Fatal(err)
	}
	// delaycompress: the first rotation is left uncompressed.
	rotated, err := os.ReadFile(log + ".1")
	if err != nil {
		t.Fatalf("no rotated log: %v\n%s", err, out)
	}
	if string(rotated) != old {
		t.Errorf("rotated log has %d bytes, want the %d written before", len(rotated), len(old))
	}
	current, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if string(current) != "new line after rotation\n" {
		t.Errorf("log after rotation is %d bytes starting %q, want only the new line", len(current), current[:min(len(current), 40)])
	}
}
