package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// interruptHelperEnv makes the test binary play a command whose cleanup
// after the first signal never ends (see TestMain).
const interruptHelperEnv = "STEAM_OVERSEER_TEST_INTERRUPT_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(interruptHelperEnv) == "1" {
		ctx, stop := interruptContext()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("cleaning up")
		select {} // a cleanup that hangs
	}
	os.Exit(m.Run())
}

// TestInterruptContext: the first SIGINT starts a graceful stop, a second
// one kills a program whose cleanup hangs, as Ctrl-C does any program.
func TestInterruptContext(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), interruptHelperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("helper printed %q, want %q", got, want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("helper did not print %q", want)
		}
	}
	expect("ready")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	expect("cleaning up")
	// The default action comes back a moment after the context is done;
	// a second Ctrl-C pressed before that would be lost, so the test
	// presses it until the helper exits.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for done := false; !done; {
		select {
		case <-tick.C:
			_ = cmd.Process.Signal(syscall.SIGINT)
		case <-exited:
			done = true
		case <-deadline:
			t.Fatal("a second SIGINT did not stop a command whose cleanup hangs")
		}
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("helper ended with %v, want killed by SIGINT", cmd.ProcessState)
	}
}

// TestNewServer checks the limits on slow clients. Proving them by a client
// that trickles its body would take the timeouts' full length, so the
// server's settings are what is checked.
func TestNewServer(t *testing.T) {
	t.Parallel()
	srv := newServer(http.NotFoundHandler())
	var problems []string
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > time.Minute {
		problems = append(problems, fmt.Sprintf("ReadHeaderTimeout %s", srv.ReadHeaderTimeout))
	}
	if srv.ReadTimeout <= 0 || srv.ReadTimeout > time.Minute {
		problems = append(problems, fmt.Sprintf("ReadTimeout %s", srv.ReadTimeout))
	}
	// Without IdleTimeout, net/http falls back to ReadTimeout; a keep-alive
	// connection must not be held for good either way.
	if srv.IdleTimeout <= 0 || srv.IdleTimeout > 5*time.Minute {
		problems = append(problems, fmt.Sprintf("IdleTimeout %s", srv.IdleTimeout))
	}
	// A slow scrape of a thousand deployments must not be cut off.
	if srv.WriteTimeout != 0 && srv.WriteTimeout < time.Minute {
		problems = append(problems, fmt.Sprintf("WriteTimeout %s", srv.WriteTimeout))
	}
	if len(problems) > 0 {
		t.Errorf("server limits: %s", strings.Join(problems, ", "))
	}
}

// TestStoppedWhileStarting: SIGTERM while the state database is locked
// against a starting daemon is a clean stop, exit 0, as systemd expects.
func TestStoppedWhileStarting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		started string // logged before the state database is opened
	}{
		{"remediator", []string{"remediator", "--web.listen-address=127.0.0.1:0"}, "Starting steam-overseer remediator"},
		{"reconcile loop", []string{"reconcile", "--reconcile.interval=1h"}, "Reconciling Steam home"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := testkit.NewHome(t)
			holdStateLock(t, h, testkit.Exclusive)
			p := startSubprocess(t, nil, append(tc.args, "--steam.home="+h.Home.Dir, "--java.path="+h.Java)...)
			testkit.Eventually(t, 10*time.Second, "the command to start", func() bool {
				return strings.Contains(p.stderr.String(), tc.started)
			})
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := p.exitCode(t); code != 0 {
				t.Errorf("exit code after SIGTERM %d, want 0; log:\n%s", code, p.stderr.String())
			}
			if log := p.stderr.String(); !strings.Contains(log, "Stopped while starting") {
				t.Errorf("no word of the stop; log:\n%s", log)
			}
		})
	}
}

// TestLongRunningCommandsSurviveSIGHUP: SIGHUP, whose default action ends
// a process without a word, is logged and ignored by every long-running
// command with nothing to reload (the remediator's reload is tested with
// its token).
func TestLongRunningCommandsSurviveSIGHUP(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	for _, tc := range []struct {
		name    string
		args    []string
		started string // logged once the command runs
	}{
		{"exporter", []string{"exporter", "--web.listen-address=127.0.0.1:0"}, "Watching Steam home"},
		{"reconcile loop", []string{"reconcile", "--reconcile.interval=1h", "--java.path=" + h.Java}, "Reconciling Steam home"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSubprocess(t, nil, append(tc.args, "--steam.home="+h.Home.Dir)...)
			testkit.Eventually(t, 10*time.Second, "the command to start", func() bool {
				return strings.Contains(p.stderr.String(), tc.started)
			})
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "SIGHUP to be logged", func() bool {
				select {
				case <-p.done:
					t.Fatalf("%s ended on SIGHUP: %v; log:\n%s", tc.name, p.cmd.ProcessState, p.stderr.String())
				default:
				}
				return strings.Contains(p.stderr.String(), "Received SIGHUP; nothing to reload")
			})
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := p.exitCode(t); code != 0 {
				t.Errorf("exit code after SIGTERM %d, want 0; log:\n%s", code, p.stderr.String())
			}
		})
	}
}
