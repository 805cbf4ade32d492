package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestRemediatorNameSaysFailed: on real Jetty, a war whose name holds
// FAILED appears in Jetty's own "Started" lines; the restarted java serves
// and is kept, not stopped as a failed start. (Jetty 9.4 cannot deploy a war
// whose path holds a newline at all; TestJettyVerdict covers such lines.)
func TestRemediatorNameSaysFailed(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	var ids []int64
	for _, name := range []string{"PAYMENT_FAILED_model", "Started @1ms FAILED"} {
		d := testkit.AddJetty(t, h, testkit.Spec{Name: "payment", LogicalName: name}, jetty.War{})
		ids = append(ids, d.ID)
	}
	r := startRemediatorEnv(t, h, testkit.JettyEnv(t, h), "--remediate.watch-after-ready=2s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("remediator's log:\n%s", r.stderr.String())
		}
	})
	for _, id := range ids {
		r.notify(t, id)
	}
	for _, id := range ids {
		testkit.Eventually(t, testkit.JettyStartTimeout, "the restart journaled", func() bool {
			return journaledResult(t, h, id, state.ActionRestart, state.ResultSuccess) == 1
		})
	}
	time.Sleep(3 * time.Second) // past the watch window
	for _, id := range ids {
		d := h.Deployment(id)
		if n := journaled(t, h, id, state.ActionFailure); n != 0 {
			t.Errorf("deployment %d: %d failures journaled, want 0; log:\n%s", id, n, r.stderr.String())
		}
		if d.PID == 0 || syscall.Kill(int(d.PID), 0) != nil {
			t.Errorf("deployment %d: row PID %d does not run", id, d.PID)
		}
	}
}

// holdStateLock takes the state database's lock in mode on a connection of
// its own, as a busy writer would; release, also called when the test ends,
// rolls it back.
func holdStateLock(t *testing.T, h *testkit.Home, mode testkit.LockMode) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+h.Home.StatePath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := testkit.TakeWriteLock(context.Background(), db, mode)
	if err != nil {
		t.Fatal(err)
	}
	release = func() {
		_ = lock.Release()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// TestRemediatorStateLockedBeforeStart: the state database locked for 20 s
// when a start is due (its start cannot be counted): the failure is
// journaled as an error, counted and logged, and the deployment healed by
// the retry once the lock goes.
func TestRemediatorStateLockedBeforeStart(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn"})
	r := startRemediator(t, h)
	release := holdStateLock(t, h, testkit.Immediate)
	r.notify(t, d.ID)
	testkit.Eventually(t, 30*time.Second, "a retry scheduled", func() bool {
		return r.metric(t, `steam_remediator_retries_total{outcome="scheduled"}`) >= 1
	})
	time.Sleep(20*time.Second - 5*time.Second) // the lock held 20 s in all
	release()
	testkit.Eventually(t, 60*time.Second, "the deployment healed", func() bool {
		return journaledResult(t, h, d.ID, state.ActionRestart, state.ResultSuccess) == 1
	})
	if n := journaled(t, h, d.ID, "error"); n < 1 {
		t.Errorf("%d error entries journaled, want at least 1", n)
	}
	if v := r.metric(t, `steam_remediator_actions_total{action="error",result="failure"}`); v < 1 {
		t.Errorf("actions_total{error} %v, want at least 1", v)
	}
	if !strings.Contains(r.stderr.String(), `msg="Remediation failed" deployment_id=1 deployment=churn action=error`) {
		t.Errorf("no error logged:\n%s", r.stderr.String())
	}
}

// TestRemediatorPolicyBusyCountsOnce: a restarted java dies in its watch
// window while the state database is locked longer than its busy timeout;
// the failure is journaled once, also after the next notification.
func TestRemediatorPolicyBusyCountsOnce(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn"})
	r := startRemediator(t, h, "--remediate.watch-after-ready=5m")
	r.notify(t, d.ID)
	testkit.Eventually(t, 30*time.Second, "the restart journaled", func() bool {
		return journaledResult(t, h, d.ID, state.ActionRestart, state.ResultSuccess) == 1
	})
	release := holdStateLock(t, h, testkit.Immediate)
	if err := syscall.Kill(int(h.Deployment(d.ID).PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second) // past the busy timeout of 5 s
	release()
	testkit.Eventually(t, 60*time.Second, "the death journaled", func() bool {
		return journaled(t, h, d.ID, state.ActionFailure) >= 1
	})
	skips := journaled(t, h, d.ID, state.ActionSkip)
	r.notify(t, d.ID)
	testkit.Eventually(t, 30*time.Second, "the notification's backoff journaled", func() bool {
		return journaled(t, h, d.ID, state.ActionSkip) > skips
	})
	if n := journaled(t, h, d.ID, state.ActionFailure); n != 1 {
		t.Errorf("%d failures journaled, want 1; log:\n%s", n, r.stderr.String())
	}
}

// TestRemediatorStopsStartsSession: a start that never serves is stopped
// with its session: the child it forked, which inherited the listening
// socket, goes too and the port is free, instead of every later start
// ending in port_conflict.
func TestRemediatorStopsStartsSession(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn"})
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal(err)
	}
	childPID := filepath.Join(t.TempDir(), "child.pid")
	java := filepath.Join(t.TempDir(), "java")
	writeFile(t, java, "#!"+python+` -u
import os, socket, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen()
pid = os.fork()
if pid == 0:
    time.sleep(3600)  # holds the port, never answers
    sys.exit(0)
open(`+strconv.Quote(childPID)+`, "w").write(str(pid))
time.sleep(3600)
`, 0o755)
	h.Java = java
	// Long enough for python to fork on a loaded machine (3s was not, once).
	r := startRemediator(t, h, "--remediate.start-timeout=10s")
	r.notify(t, d.ID)
	testkit.Eventually(t, 60*time.Second, "the failed start journaled", func() bool {
		return journaledResult(t, h, d.ID, state.ActionRestart, state.ResultFailure) == 1
	})
	b, err := os.ReadFile(childPID)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	testkit.Eventually(t, 10*time.Second, "the start's child gone", func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(st), ") Z ")
	})
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", d.Port))
	if err != nil {
		t.Fatalf("port still held: %v", err)
	}
	l.Close()
	// The journal, not the log: the log line follows the journal's commit.
	if journaledWhere(t, h, d.ID, func(e state.Entry) bool {
		return e.Result == state.ResultFailure && strings.Contains(e.Detail, "stopped with SIGINT to its session")
	}) != 1 {
		t.Errorf("the journal does not say the session was signalled:\n%s", r.stderr.String())
	}
}

// TestRemediatorKillsStoppedHungJava: a hung java in state T (SIGSTOPped)
// cannot handle SIGINT: it is killed at once, not after Steam's 10 s of
// SIGINT. It leads no session of its own, so only its PID is signalled.
func TestRemediatorKillsStoppedHungJava(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn"})
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r := startRemediator(t, h, "--remediate.hung-after=1s", "--probe.start-grace=1ms")
	body := strings.ReplaceAll(notification(d.ID, 0), "SteamDeploymentDown", "SteamDeploymentUnresponsive")
	if code, resp, err := r.post(http.MethodPost, strings.NewReader(body), ""); err != nil || code != http.StatusOK {
		t.Fatalf("POST /webhook: %d %s %v", code, resp, err)
	}
	testkit.Eventually(t, 60*time.Second, "the hung java stopped", func() bool {
		return strings.Contains(r.stderr.String(), "Stopped unresponsive deployment")
	})
	log := r.stderr.String()
	if !strings.Contains(log, "signal=\"SIGKILL at once: the process was stopped (state T)\"") {
		t.Errorf("not killed at once:\n%s", log)
	}
	if strings.Contains(log, "to its session") {
		t.Errorf("a java leading no session of its own had its session signalled:\n%s", log)
	}
}

// TestRemediatorResumesHungCheck: the remediator SIGKILLed while it
// verifies a hung java; started again, it finishes the check and restarts
// the deployment with no new notification.
func TestRemediatorResumesHungCheck(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn"})
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	args := []string{"--remediate.hung-after=6s", "--probe.start-grace=1ms"}
	r := startRemediator(t, h, args...)
	body := strings.ReplaceAll(notification(d.ID, 0), "SteamDeploymentDown", "SteamDeploymentUnresponsive")
	if code, resp, err := r.post(http.MethodPost, strings.NewReader(body), ""); err != nil || code != http.StatusOK {
		t.Fatalf("POST /webhook: %d %s %v", code, resp, err)
	}
	time.Sleep(2 * time.Second) // inside the check of 6 s
	if strings.Contains(r.stderr.String(), "Stopped unresponsive deployment") {
		t.Fatal("the check ended before the remediator was killed")
	}
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.done

	r = startRemediator(t, h, args...)
	testkit.Eventually(t, 60*time.Second, "the hung deployment restarted", func() bool {
		return journaledResult(t, h, d.ID, state.ActionRestart, state.ResultSuccess) == 1
	})
	if pid := h.Deployment(d.ID).PID; pid == int64(p.Pid) {
		t.Errorf("row still holds the hung PID %d", pid)
	}
}
