// Package systemd holds example unit files; its test checks them with
// systemd's own verifier and against the binary's real flags.
package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

const installedBinary = "/usr/local/bin/steam-overseer"

var units = []string{
	"steam-overseer-exporter.service",
	"steam-overseer-remediator.service",
	"steam-overseer-backup.service",
	"steam-overseer-backup.timer",
}

// directives reads a unit file's Key=Value lines, all values of each key in
// order.
func directives(t *testing.T, unit string) map[string][]string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a directive: %q", unit, line)
		}
		d[k] = append(d[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUnitsVerify(t *testing.T) {
	analyze := steamtest.RequireTool(t, "systemd-analyze")
	bin := steamtest.Binary(t)
	// verify insists that ExecStart's program exists: point the units at
	// the binary just built.
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), installedBinary, bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitsExecStart runs every ExecStart of the services with --help, the
// environment file's variables substituted: a flag the binary does not know
// fails kingpin's parse before the help is printed.
func TestUnitsExecStart(t *testing.T) {
	env := directives(t, "steam-overseer.default")
	bin := steamtest.Binary(t)
	varRef := regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		t.Run(u, func(t *testing.T) {
			d := directives(t, u)
			if got := d["EnvironmentFile"]; !slices.Equal(got, []string{"/etc/default/steam-overseer"}) {
				t.Errorf("EnvironmentFile=%v, want /etc/default/steam-overseer", got)
			}
			execStart := d["ExecStart"]
			if len(execStart) != 1 {
				t.Fatalf("%d ExecStart lines, want 1", len(execStart))
			}
			var args []string
			for _, word := range strings.Fields(execStart[0]) {
				missing := ""
				word = varRef.ReplaceAllStringFunc(word, func(ref string) string {
					m := varRef.FindStringSubmatch(ref)
					name := m[1] + m[2]
					v, ok := env[name]
					if !ok {
						missing = name
						return ""
					}
					return strings.Trim(v[len(v)-1], `"`)
				})
				if missing != "" {
					t.Errorf("ExecStart uses $%s, which /etc/default/steam-overseer does not set", missing)
				}
				if word != "" {
					args = append(args, word)
				}
			}
			if args[0] != installedBinary {
				t.Fatalf("ExecStart runs %s, want %s", args[0], installedBinary)
			}
			cmd := exec.Command(bin, append(args[1:], "--help")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s --help: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestRemediatorKeepsDeployments pins the settings without which stopping or
// restarting the remediator, or one deployment's OOM kill, would take down
// the deployments it started (they live in its cgroup).
func TestRemediatorKeepsDeployments(t *testing.T) {
	d := directives(t, "steam-overseer-remediator.service")
	for _, tc := range []struct{ key, want string }{
		{"KillMode", "process"},
		{"OOMPolicy", "continue"},
		{"TasksMax", "infinity"},
	} {
		if got := d[tc.key]; !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s=%v, want %s", tc.key, got, tc.want)
		}
	}
	for _, key := range []string{"PrivateTmp", "MemoryDenyWriteExecute", "MemoryMax", "SystemCallFilter", "ProtectProc"} {
		if v, ok := d[key]; ok && !slices.Equal(v, []string{"no"}) {
			t.Errorf("%s=%v would break the JVMs the remediator starts", key, v)
		}
	}
}
