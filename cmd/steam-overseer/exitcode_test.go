package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// runBinary runs the real steam-overseer with args and no STEAM_HOME, and
// returns its exit code, stdout and stderr.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testkit.Binary(t), args...)
	cmd.Env = append(os.Environ(), "STEAM_HOME=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// lastLine is the last non-empty line of s: what a command that logged
// while it ran fails with.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// isFailureSentence reports whether line is a failure as the CLI prints one:
// "steam-overseer: ..." saying want, without log decoration.
func isFailureSentence(line, want string) bool {
	for _, decoration := range []string{"time=", "level=", "source=", "msg="} {
		if strings.Contains(line, decoration) {
			return false
		}
	}
	return strings.HasPrefix(line, "steam-overseer: ") && strings.Contains(line, want)
}

// TestExitCodes runs the real binary: usage errors exit 2, runtime errors
// exit 1, each as one plain sentence on stderr.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	home := "--steam.home=" + h.Home.Dir
	missing := filepath.Join(t.TempDir(), "nope")

	// noJournal checks that a refused reset left no trace in the state
	// database: none was created, or it holds no journal row.
	noJournal := func(t *testing.T) {
		st, err := state.OpenReadOnly(h.Home.StatePath())
		if errors.Is(err, state.ErrNoState) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if es, err := st.Journal(context.Background(), 0, 10); err != nil || len(es) != 0 {
			t.Errorf("journal holds %+v (%v), want nothing", es, err)
		}
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		// want is what stderr's last line says; for usage without a
		// command, what stderr holds.
		want string
		// oneLine: stderr is that sentence alone, no log line before it.
		oneLine bool
		check   func(t *testing.T)
	}{
		{name: "no arguments", wantCode: 2, want: "usage: steam-overseer"},
		{name: "flags but no command", args: []string{"--log.level=debug"}, wantCode: 2, want: "usage: steam-overseer"},
		{name: "unknown command", args: []string{"bogus"}, wantCode: 2,
			want: `expected command but got "bogus"`, oneLine: true},
		{name: "unknown flag", args: []string{"status", "--bogus"}, wantCode: 2,
			want: "unknown long flag '--bogus'", oneLine: true},
		{name: "required flag missing", args: []string{"backup", home}, wantCode: 2,
			want: "required flag(s) '--output' not provided", oneLine: true},
		{name: "bad enum", args: []string{"status", home, "--output=xml"}, wantCode: 2,
			want: "must be one of table,json", oneLine: true},
		{name: "status of a missing home", args: []string{"status", "--steam.home=" + missing}, wantCode: 1,
			want: "no such file or directory", oneLine: true},
		{name: "status without a home", args: []string{"status"}, wantCode: 2,
			want: "required flag(s) '--steam.home' not provided", oneLine: true},
		{name: "exporter without a home", args: []string{"exporter"}, wantCode: 2,
			want: "required flag(s) '--steam.home' not provided", oneLine: true},
		{name: "remediator without a home", args: []string{"remediator"}, wantCode: 2,
			want: "required flag(s) '--steam.home' not provided", oneLine: true},
		{name: "reset of a non-numeric id", args: []string{"remediator", "reset", "abc", home}, wantCode: 2,
			want: `deployment id "abc" is not a positive integer`, oneLine: true, check: noJournal},
		{name: "reset of id 0", args: []string{"remediator", "reset", "0", home}, wantCode: 2,
			want: `deployment id "0" is not a positive integer`, oneLine: true, check: noJournal},
		{name: "reset of an unknown id", args: []string{"remediator", "reset", "99", home}, wantCode: 1,
			want: "no deployment 99 in Steam's registry", oneLine: true, check: noJournal},
		{name: "backup verify of a missing archive", args: []string{"backup", "verify", missing}, wantCode: 1,
			want: "no such file or directory", oneLine: true},
		{name: "restore without a home", args: []string{"restore", missing}, wantCode: 2,
			want: "required flag(s) '--steam.home' not provided", oneLine: true},
		{name: "version", args: []string{"--version"}, wantCode: 0},
		{name: "help", args: []string{"help", "backup"}, wantCode: 0},
		{name: "--help", args: []string{"--help"}, wantCode: 0},
		{name: "--help of a command", args: []string{"status", "--help"}, wantCode: 0},
		// Last: it journals the reset the others must not.
		{name: "reset of a known id", args: []string{"remediator", "reset", "1", home}, wantCode: 0,
			check: func(t *testing.T) {
				st, err := state.OpenReadOnly(h.Home.StatePath())
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				es, err := st.Journal(context.Background(), d.ID, 10)
				if err != nil || len(es) != 1 || es[0].Action != state.ActionReset {
					t.Errorf("journal holds %+v (%v), want one reset", es, err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			switch {
			case tc.wantCode == 0:
				if stderr != "" && strings.Contains(stderr, "level=ERROR") {
					t.Errorf("success logged an error:\n%s", stderr)
				}
			case strings.HasPrefix(tc.want, "usage:"):
				if !strings.Contains(stderr, tc.want) || stdout != "" {
					t.Errorf("stderr does not hold %q, or stdout is not empty:\nstdout: %s\nstderr: %s", tc.want, stdout, stderr)
				}
			case !isFailureSentence(lastLine(stderr), tc.want):
				t.Errorf("stderr does not end in a plain sentence saying %q:\n%s", tc.want, stderr)
			case tc.oneLine && strings.Count(stderr, "\n") != 1:
				t.Errorf("stderr is more than the one sentence:\n%s", stderr)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// TestHelp runs the real binary's help as an operator reads it: the
// remediator's own flags under `remediator --help` (not only under its
// default serve), every boolean's default, and a man page that man's
// whatis can index.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"remediator", []string{"remediator", "--help"}, []string{
			"--webhook.bearer-token-file=", "--web.listen-address=", "--webhook.match=",
			"--remediate.concurrency=", "--java.opts=", "--reconcile.interval=", "--steam.home=",
		}},
		{"remediator serve", []string{"remediator", "serve", "--help"}, []string{"--webhook.bearer-token-file="}},
		{"exporter booleans", []string{"exporter", "--help"}, []string{
			"HTTP in the background. (default: on)", "(Linux only). (default: off)",
		}},
		// The demo is the README's first command: loopback only.
		{"demo", []string{"demo", "--help"}, []string{"--exporter.listen-address=\"127.0.0.1:9732\""}},
		{"man page", []string{"--help-man"}, []string{
			".TH STEAM-OVERSEER 1 ", `steam-overseer \- Watches H2O Steam deployments`,
			"webhook.bearer-token-file", `\fBremediator serve`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr)
			}
			// kingpin writes help to stderr, the man page to stdout.
			out := stdout + stderr
			for _, want := range tc.want {
				if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
					t.Errorf("%v does not say %q:\n%s", tc.args, want, out)
				}
			}
		})
	}
}

// TestOperatorCommand: the demo's hint names a command that still works
// after the demo ends, which the binary of `go run` does not.
func TestOperatorCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ exe, want string }{
		{"/tmp/go-build1234567/b001/exe/steam-overseer", "go run ./cmd/steam-overseer"},
		{"/home/op/.cache/tmp/go-build99/b001/exe/steam-overseer", "go run ./cmd/steam-overseer"},
		{"/usr/bin/steam-overseer", "/usr/bin/steam-overseer"},
		{"/work/steam-overseer/steam-overseer", "/work/steam-overseer/steam-overseer"},
		{"/opt/exe/steam-overseer", "/opt/exe/steam-overseer"},
	} {
		if got := operatorCommand(tc.exe); got != tc.want {
			t.Errorf("operatorCommand(%q) = %q, want %q", tc.exe, got, tc.want)
		}
	}
}
