package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// journaledReason counts the journal's entries of the action and reason.
func journaledReason(t *testing.T, h *testkit.Home, id int64, action, reason string) int {
	t.Helper()
	return journaledWhere(t, h, id, func(e state.Entry) bool { return e.Action == action && e.Reason == reason })
}

// TestRemediatorGraceEndsAtFirstAnswer: with an hour of start grace, a java
// the remediator saw answer (it started it) and that then hangs is
// restarted at once, a few seconds old; a java as young that it never saw
// answer is left alone.
func TestRemediatorGraceEndsAtFirstAnswer(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	answered := h.Add(testkit.Spec{Name: "answered", LogicalName: "answered"})
	loading, loadingProc := h.Run(testkit.Spec{Name: "loading", LogicalName: "loading"})
	r := startRemediator(t, h, "--probe.start-grace=1h", "--remediate.hung-after=1s")
	unresponsive := func(id int64) {
		t.Helper()
		body := strings.ReplaceAll(notification(id, 0), "SteamDeploymentDown", "SteamDeploymentUnresponsive")
		if code, resp, err := r.post(http.MethodPost, strings.NewReader(body), ""); err != nil || code != http.StatusOK {
			t.Fatalf("POST /webhook: %d %s %v", code, resp, err)
		}
	}

	if code, body := r.notify(t, answered.ID); code != http.StatusOK {
		t.Fatalf("POST /webhook: %d %s", code, body)
	}
	testkit.Eventually(t, 30*time.Second, "the remediator to start the deployment", func() bool {
		return journaledResult(t, h, answered.ID, state.ActionRestart, state.ResultSuccess) == 1
	})
	young := h.Deployment(answered.ID).PID
	for _, pid := range []int64{young, int64(loadingProc.Pid)} {
		if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	unresponsive(answered.ID)
	unresponsive(loading.ID)

	testkit.Eventually(t, 30*time.Second, "the young java that answered once to be replaced", func() bool {
		return journaledResult(t, h, answered.ID, state.ActionRestart, state.ResultSuccess) == 2
	})
	if pid := h.Deployment(answered.ID).PID; pid == young || !testkit.Alive(int(pid)) {
		t.Errorf("row PID %d, want a new serving java instead of %d", pid, young)
	}
	if n := journaledReason(t, h, answered.ID, state.ActionNoop, "start_grace"); n != 0 {
		t.Errorf("the java it saw answer was given the start grace %d times", n)
	}
	testkit.Eventually(t, 30*time.Second, "the never-answering java to be left in its grace", func() bool {
		return journaledReason(t, h, loading.ID, state.ActionNoop, "start_grace") == 1
	})
	if !testkit.Alive(loadingProc.Pid) || h.Deployment(loading.ID).PID != loading.PID {
		t.Error("the java never seen answering was stopped within its start grace")
	}
	if n := journaled(t, h, loading.ID, state.ActionRestart); n != 0 {
		t.Errorf("%d restarts of the java within its grace, want 0", n)
	}
}
