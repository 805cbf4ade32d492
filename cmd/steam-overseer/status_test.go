package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/testkit"
)

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	_, p := h.Run(testkit.Spec{Name: "fraud", LogicalName: "fraud"})
	testkit.Kill(t, p)
	corrupt := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(corrupt, []byte(strings.Repeat("garbage ", 512)), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		home      string
		statePath string
		wantCode  int
	}{
		// No state database yet: the remediator never ran.
		{name: "no state database", home: h.Home.Dir, wantCode: 0},
		{name: "unreadable state database", home: h.Home.Dir, statePath: corrupt, wantCode: 0},
		{name: "steam home without steam.db", home: t.TempDir(), wantCode: 1},
		{name: "steam home missing", home: filepath.Join(t.TempDir(), "nonexistent"), wantCode: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"table", "json"} {
				var stdout bytes.Buffer
				code := runStatus(context.Background(), promslog.NewNopLogger(), &stdout, location{tc.home, tc.statePath}, "/proc", format, defaultProbes)
				if code != tc.wantCode {
					t.Fatalf("%s: exit code %d, want %d", format, code, tc.wantCode)
				}
				if code != 0 {
					if stdout.Len() != 0 {
						t.Errorf("%s: printed %q on failure", format, stdout.String())
					}
					continue
				}
				switch format {
				case "table":
					out := stdout.String()
					if !strings.Contains(out, "churn") || !strings.Contains(out, "running") ||
						!strings.Contains(out, "fraud") || !strings.Contains(out, "dead") {
						t.Errorf("table lacks a deployment or status:\n%s", out)
					}
				case "json":
					var rows []struct {
						Name, Status string
					}
					if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
						t.Fatalf("decoding %q: %v", stdout.String(), err)
					}
					if len(rows) != 2 || rows[0].Status != "running" || rows[1].Status != "dead" {
						t.Errorf("rows %+v, want churn running and fraud dead", rows)
					}
				}
			}
		})
	}
}

// defaultProbes are the status command's probe flags at their defaults.
var defaultProbes = probeFlags{path: probe.DefaultPath, timeout: probe.DefaultTimeout}

func TestStatusCommandFlags(t *testing.T) {
	t.Parallel()
	if code := run([]string{"steam-overseer", "status", "--steam.home", t.TempDir(), "--output", "xml"}); code != 2 {
		t.Errorf("--output=xml exits %d, want 2", code)
	}
}

// TestStatusProcfs: processes are read under --path.procfs, not /proc.
func TestStatusProcfs(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	fixture := h.FakeProcess(d, 4242) // a PID in the fixture only
	for _, tc := range []struct {
		procfs, want string
	}{
		{procfs: "/proc", want: "dead"},
		// Verified running in the fixture; nothing answers on its port.
		{procfs: fixture, want: "unresponsive"},
	} {
		t.Run(tc.procfs, func(t *testing.T) {
			var stdout bytes.Buffer
			if code := runStatus(context.Background(), promslog.NewNopLogger(), &stdout, location{home: h.Home.Dir}, tc.procfs, "json", defaultProbes); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			var rows []struct{ Status string }
			if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
				t.Fatalf("decoding %q: %v", stdout.String(), err)
			}
			if len(rows) != 1 || rows[0].Status != tc.want {
				t.Errorf("rows %+v, want one %s", rows, tc.want)
			}
		})
	}
	t.Run("missing procfs", func(t *testing.T) {
		code := run([]string{"steam-overseer", "status", "--steam.home", h.Home.Dir, "--path.procfs", filepath.Join(t.TempDir(), "nope")})
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	})
}
