package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

func TestBackupCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// prepare returns the --steam.home and --output flags.
		prepare     func(t *testing.T, h *testkit.Home) (home, output string)
		wantCode    int
		wantRecord  string // the backups table's newest result, "" for none
		wantArchive bool
	}{
		{
			name: "success",
			prepare: func(t *testing.T, h *testkit.Home) (string, string) {
				return h.Home.Dir, filepath.Join(t.TempDir(), "steam.tar.gz")
			},
			wantRecord:  state.ResultSuccess,
			wantArchive: true,
		},
		{
			name: "steam home missing",
			prepare: func(t *testing.T, h *testkit.Home) (string, string) {
				return filepath.Join(t.TempDir(), "nonexistent"), filepath.Join(t.TempDir(), "steam.tar.gz")
			},
			wantCode: 1,
		},
		{
			name: "steam.db missing",
			prepare: func(t *testing.T, h *testkit.Home) (string, string) {
				if err := os.Remove(h.Home.DBPath()); err != nil {
					t.Fatal(err)
				}
				return h.Home.Dir, filepath.Join(t.TempDir(), "steam.tar.gz")
			},
			wantCode:   1,
			wantRecord: state.ResultFailure,
		},
		{
			name: "output folder missing",
			prepare: func(t *testing.T, h *testkit.Home) (string, string) {
				return h.Home.Dir, filepath.Join(t.TempDir(), "nonexistent", "steam.tar.gz")
			},
			wantCode:   1,
			wantRecord: state.ResultFailure,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
			home, output := tc.prepare(t, h)
			var stdout bytes.Buffer
			before := time.Now()
			code := runBackup(context.Background(), promslog.NewNopLogger(), &stdout, nil, location{home: home}, output)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d", code, tc.wantCode)
			}
			_, err := os.Stat(output)
			if tc.wantArchive != (err == nil) {
				t.Errorf("archive %s: %v, want it to exist: %v", output, err, tc.wantArchive)
			}
			if tc.wantArchive && strings.TrimSpace(stdout.String()) != output {
				t.Errorf("printed %q, want the archive's path %s", stdout.String(), output)
			}

			st, err := state.OpenReadOnly(h.Home.StatePath())
			if tc.wantRecord == "" {
				if err == nil {
					st.Close()
					t.Error("a state database was created for a failed run")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			records, err := st.Backups(context.Background(), 1)
			if err != nil || len(records) != 1 || records[0].Result != tc.wantRecord {
				t.Fatalf("backup records %+v (%v), want one %s", records, err, tc.wantRecord)
			}
			last, ok, err := st.LastBackupSuccess(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if wantOK := tc.wantRecord == state.ResultSuccess; ok != wantOK || (ok && last.Before(before)) {
				t.Errorf("last success %v, %v; want one after %v: %v", last, ok, before, wantOK)
			}
		})
	}
}

func TestBackupCommandFlags(t *testing.T) {
	t.Parallel()
	if code := run([]string{"steam-overseer", "backup", "--steam.home", t.TempDir()}); code != 2 {
		t.Errorf("backup without --output exits %d, want 2", code)
	}
}

// flipByte changes one byte of content, which the archive holds once, the
// way a bad disk would, and compresses the archive anew.
func flipByte(t *testing.T, archive string, content []byte) {
	t.Helper()
	compressed, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	gz, err := gzip.NewReader(bytes.NewReader(compressed))
	if err == nil {
		raw, err = io.ReadAll(gz)
	}
	if err != nil {
		t.Fatalf("decompressing %s: %v", archive, err)
	}
	i := bytes.Index(raw, content)
	if i < 0 || bytes.Count(raw, content) != 1 {
		t.Fatalf("archive %s holds %q %d times, want once", archive, content, bytes.Count(raw, content))
	}
	raw[i+len(content)/2] ^= 0x01
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	if _, err := gw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBackupVerifyRestore runs the real binary as an operator would: back
// up, verify, restore into an empty folder and list its deployments; a
// changed byte fails verify naming the file; a non-empty folder is refused.
func TestBackupVerifyRestore(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	var ids []int64
	for _, name := range []string{"churn", "fraud", "spam"} {
		ids = append(ids, h.Add(testkit.Spec{Name: name, LogicalName: name}).ID)
	}
	// A war of its own content, for flipByte to find.
	churnWar := "var/master/model/1/churn.war"
	warContent := []byte("the churn model's war, unlike any other file")
	if err := os.WriteFile(filepath.Join(h.Home.Dir, churnWar), warContent, 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "steam.tar.gz")
	if code, stdout, stderr := runBinary(t, "backup", "--steam.home="+h.Home.Dir, "--output="+archive); code != 0 ||
		strings.TrimSpace(stdout) != archive {
		t.Fatalf("backup exited %d, printed %q:\n%s", code, stdout, stderr)
	}

	code, stdout, stderr := runBinary(t, "backup", "verify", archive)
	if code != 0 || !strings.Contains(stdout, "OK") || !strings.Contains(stdout, "var/master/db/steam.db") {
		t.Errorf("verify of a good backup exited %d, printed %q:\n%s", code, stdout, stderr)
	}

	restored := filepath.Join(t.TempDir(), "home")
	if code, stdout, stderr := runBinary(t, "restore", archive, "--steam.home="+restored); code != 0 {
		t.Fatalf("restore exited %d, printed %q:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runBinary(t, "status", "--steam.home="+restored, "--output=json")
	var rows []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(stdout), &rows); code != 0 || err != nil {
		t.Fatalf("status of the restored home exited %d (%v):\n%s\n%s", code, err, stdout, stderr)
	}
	var got []int64
	for _, r := range rows {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("status of the restored home lists deployments %v, want %v", got, ids)
	}

	code, _, stderr = runBinary(t, "restore", archive, "--steam.home="+restored)
	if code != 1 || !isFailureSentence(stderr, "is not empty") {
		t.Errorf("restore into a non-empty folder exited %d:\n%s", code, stderr)
	}

	flipByte(t, archive, warContent)
	code, _, stderr = runBinary(t, "backup", "verify", archive)
	if code != 1 || !isFailureSentence(stderr, churnWar+": has sha256") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("verify of a changed war exited %d, want 1 and a sentence naming %s:\n%s", code, churnWar, stderr)
	}
}

// TestBackupProgress: --progress prints the progress line on stderr even
// when it is not a terminal; without it, a pipe gets none.
func TestBackupProgress(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	line := regexp.MustCompile(`(?m)^backup: \d+\.\d MiB / \d+\.\d MiB \(100%\), \d+\.\d MiB/s$`)
	for _, tc := range []struct {
		name     string
		flags    []string
		wantLine bool
	}{
		{name: "--progress", flags: []string{"--progress", "--progress.delay=0"}, wantLine: true},
		{name: "not a terminal", flags: []string{"--progress.delay=0"}},
		{name: "--progress, shorter than the delay", flags: []string{"--progress", "--progress.delay=1h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "steam.tar.gz")
			code, _, stderr := runBinary(t, append([]string{"backup", "--steam.home=" + h.Home.Dir,
				"--output=" + archive, "--log.level=warn"}, tc.flags...)...)
			if code != 0 {
				t.Fatalf("backup exited %d:\n%s", code, stderr)
			}
			if line.MatchString(stderr) != tc.wantLine {
				t.Errorf("stderr:\n%s\nwant a progress line: %v", stderr, tc.wantLine)
			}
		})
	}
}

// TestBackupProgressOnTerminal runs the backup on a real terminal (a pty
// from util-linux's script): the progress line comes without --progress and
// is rewritten in place.
func TestBackupProgressOnTerminal(t *testing.T) {
	t.Parallel()
	script := testkit.RequireTool(t, "script")
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	archive := filepath.Join(t.TempDir(), "steam.tar.gz")
	// script runs its command through a shell: every word is quoted.
	var words []string
	for _, w := range []string{testkit.Binary(t), "backup", "--steam.home=" + h.Home.Dir, "--output=" + archive,
		"--log.level=warn", "--progress.delay=0"} {
		words = append(words, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	cmd := exec.Command(script, "--quiet", "--return", "--command", strings.Join(words, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "STEAM_HOME=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("backup on a terminal: %v\n%q", err, out)
	}
	if !regexp.MustCompile(`\rbackup: \d+\.\d MiB / \d+\.\d MiB \(100%\), \d+\.\d MiB/s\x1b\[K\r?\n`).Match(out) {
		t.Errorf("no progress line rewritten in place on the terminal:\n%q", out)
	}
}
