// Package logrotate holds the logrotate rule for deployment logs; its test
// runs the real logrotate on it.
package logrotate_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/testkit"
)

const shippedLogDir = "/home/steam/steam-1.1.6-linux-amd64/var/master/log"

// rule returns the shipped rule for a log folder of the test's, run as the
// test's own user: only the path and the su line change.
func rule(t *testing.T, logDir string) string {
	t.Helper()
	b, err := os.ReadFile("steam-overseer")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, shippedLogDir+"/deployment-*.log {") || !strings.Contains(s, "su steam steam") {
		t.Fatalf("the rule no longer names %s/deployment-*.log or su steam steam", shippedLogDir)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	s = strings.ReplaceAll(s, shippedLogDir, logDir)
	return strings.ReplaceAll(s, "su steam steam", fmt.Sprintf("su %s %s", u.Username, g.Name))
}

// setup writes a log folder with deployment-7.log holding content, and the
// rule for it; it returns the log's and the rule's paths.
func setup(t *testing.T, content string) (log, conf string) {
	t.Helper()
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(logDir, "deployment-7.log")
	if err := os.WriteFile(log, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(dir, "steam-overseer")
	if err := os.WriteFile(conf, []byte(rule(t, logDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return log, conf
}

// TestRuleDebug is logrotate's own check of the rule: --debug parses it and
// says what it would do, changing nothing.
func TestRuleDebug(t *testing.T) {
	logrotate := testkit.RequireTool(t, "logrotate")
	log, conf := setup(t, "Started @1234ms\n")
	out, err := exec.Command(logrotate, "--debug", "--force", "--state", filepath.Join(t.TempDir(), "state"), conf).CombinedOutput()
	if err != nil {
		t.Fatalf("logrotate --debug: %v\n%s", err, out)
	}
	for _, want := range []string{"considering log " + log, "copying " + log, "truncating " + log} {
		if !strings.Contains(string(out), want) {
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
	logrotate := testkit.RequireTool(t, "logrotate")
	old := strings.Repeat("old line of a deployment's log\n", 1000)
	log, conf := setup(t, old)
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// --force: the rule is daily, and the file is seconds old.
	out, err := exec.Command(logrotate, "--verbose", "--force", "--state", filepath.Join(t.TempDir(), "state"), conf).CombinedOutput()
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
