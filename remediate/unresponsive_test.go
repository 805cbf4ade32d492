package remediate

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// hungConfig verifies a hang quickly: three probes of 200 ms over 400 ms.
func hungConfig(c *Config) {
	c.StartGrace = -1
	c.ProbeTimeout = 200 * time.Millisecond
	c.HungAfter = 400 * time.Millisecond
	c.StopTimeout = 300 * time.Millisecond
}

// TestUnresponsiveIsRestarted: a live java stopped with SIGSTOP is verified
// hung, stopped through its pidfd and replaced by a new java whose PID lands
// in the row; a foreign process planted in another row is never signalled.
func TestUnresponsiveIsRestarted(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, hungConfig)
	d, p := h.Run(testkit.Spec{Name: "churn"})
	foreign := testkit.StartForeign(t)
	planted := h.Add(testkit.Spec{Name: "planted"})
	h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, foreign.Pid, planted.ID)
	if err := syscall.Kill(p.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	o, err := e.RemediateAlert(context.Background(), d.ID, AlertUnresponsive)
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != ActionRestart || o.Result != ResultSuccess || o.Reason != ReasonUnresponsive || o.OldPID != int64(p.Pid) {
		t.Fatalf("outcome %s, want restart success (unresponsive) of PID %d", o, p.Pid)
	}
	testkit.Eventually(t, 5*time.Second, "the hung java to be gone", func() bool { return !alive(t, p.Pid) })
	if pid := running(t, h, d.ID); pid != o.NewPID || pid == int64(p.Pid) {
		t.Errorf("row PID %d, want the new %d", pid, o.NewPID)
	}
	if _, err := e.RemediateAlert(context.Background(), planted.ID, AlertUnresponsive); err != nil {
		t.Fatal(err)
	}
	if !alive(t, foreign.Pid) {
		t.Error("the foreign process planted in a row was signalled")
	}
}

// TestAnsweringIsLeftAlone: an unresponsive notification for a deployment
// that answers, slowly within the timeout or again after SIGCONT during the
// verification, does nothing but journal why.
func TestAnsweringIsLeftAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		resume bool // SIGSTOP first, SIGCONT while the remediator verifies
	}{
		{name: "answering"},
		{name: "resumed during verification", resume: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h, hungConfig, func(c *Config) { c.HungAfter = 2 * time.Second })
			d, p := h.Run(testkit.Spec{Name: "churn"})
			if tc.resume {
				if err := syscall.Kill(p.Pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				time.AfterFunc(500*time.Millisecond, func() { _ = syscall.Kill(p.Pid, syscall.SIGCONT) })
			}
			o, err := e.RemediateAlert(context.Background(), d.ID, AlertUnresponsive)
			if err != nil {
				t.Fatal(err)
			}
			if o.Action != ActionNoop || o.Reason != ReasonAnswering {
				t.Fatalf("outcome %s, want noop (answering)", o)
			}
			if !alive(t, p.Pid) || running(t, h, d.ID) != int64(p.Pid) {
				t.Error("the answering java was replaced")
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
				t.Errorf("%d starts, want 0", n)
			}
			js := e.journal(t, d.ID)
			if len(js) != 1 || js[0].Action != string(ActionNoop) || js[0].Reason != string(ReasonAnswering) {
				t.Errorf("journal:%s", describeJournal(js))
			}
		})
	}
}

// TestStartGraceProtectsYoungJava: a java younger than the start grace is
// never stopped, however it answers.
func TestStartGraceProtectsYoungJava(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, hungConfig, func(c *Config) { c.StartGrace = time.Hour })
	d, p := h.Run(testkit.Spec{Name: "churn"})
	if err := syscall.Kill(p.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	o, err := e.RemediateAlert(context.Background(), d.ID, AlertUnresponsive)
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != ActionNoop || o.Reason != ReasonStartGrace || !alive(t, p.Pid) {
		t.Fatalf("outcome %s, want noop (start_grace) with PID %d alive", o, p.Pid)
	}
}

// TestAdoptionProvesReadiness: a java of the deployment that runs under a PID
// the row does not know but never answers is not recorded: it is stopped
// and a serving java is started and recorded instead.
func TestAdoptionProvesReadiness(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, hungConfig, func(c *Config) { c.StartTimeout = 2 * time.Second })
	d := h.Add(testkit.Spec{Name: "churn"})
	lost := h.Start(d) // records its PID
	h.Exec(`UPDATE service SET process_id = 0 WHERE id = ?`, d.ID)
	if err := syscall.Kill(lost.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != ActionRestart || o.Result != ResultSuccess {
		t.Fatalf("outcome %s, want restart success after the silent java was refused", o)
	}
	testkit.Eventually(t, 5*time.Second, "the silent java to be gone", func() bool { return !alive(t, lost.Pid) })
	if pid := running(t, h, d.ID); pid != o.NewPID || pid == int64(lost.Pid) {
		t.Errorf("row PID %d, want the new %d", pid, o.NewPID)
	}
	js := e.journal(t, d.ID)
	if len(js) != 2 || js[0].Action != string(ActionAdopt) || js[0].Result != state.ResultFailure ||
		js[0].NewPID != int64(lost.Pid) || js[0].Reason != string(ReasonUnresponsive) {
		t.Errorf("journal, want a failed adoption of PID %d then the restart:%s", lost.Pid, describeJournal(js))
	}
}

// TestHangingAgainGivesUp: a deployment whose every restart hangs again is
// given up like one that crashes: each java stopped as hung inside its watch
// window counts as a failed start.
func TestHangingAgainGivesUp(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, hungConfig)
	d := h.Add(testkit.Spec{Name: "churn"})
	if o, err := e.Remediate(context.Background(), d.ID); err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
		t.Fatalf("first start: %s (%v)", o, err)
	}
	for range 2 * DefaultMaxFailures {
		pol, err := e.state.RestartPolicy(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pol.GaveUp(time.Now()) {
			break
		}
		if pid := h.Deployment(d.ID).PID; testkit.Alive(int(pid)) {
			testkit.Freeze(t, &os.Process{Pid: int(pid)})
		}
		time.Sleep(100 * time.Millisecond) // the test's backoff is 20–80 ms
		if _, err := e.RemediateAlert(context.Background(), d.ID, AlertUnresponsive); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := e.state.RestartPolicy(context.Background(), d.ID)
	if err != nil || !pol.GaveUp(time.Now()) || !strings.Contains(pol.GaveUpReason, "consecutive failed starts") {
		t.Fatalf("policy %+v (%v), want given up for consecutive failed starts:%s", pol, err, describeJournal(e.journal(t, d.ID)))
	}
	if n := countActions(e.journal(t, d.ID), state.ActionFailure, ""); n != DefaultMaxFailures {
		t.Errorf("%d hung restarts counted as failed, want %d:%s", n, DefaultMaxFailures, describeJournal(e.journal(t, d.ID)))
	}
}

// TestStartGraceEndsAtAnswer: a java the engine started and saw serve has no
// start grace left: hung a moment later, it is stopped at once (a failed
// start, being inside its watch window) instead of after an hour's grace.
func TestStartGraceEndsAtAnswer(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, hungConfig, func(c *Config) { c.StartGrace = time.Hour })
	d := h.Add(testkit.Spec{Name: "churn"})
	if o, err := e.Remediate(context.Background(), d.ID); err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
		t.Fatalf("first start: %s (%v)", o, err)
	}
	young := h.Deployment(d.ID).PID
	testkit.Freeze(t, &os.Process{Pid: int(young)})
	o, err := e.RemediateAlert(context.Background(), d.ID, AlertUnresponsive)
	if err != nil {
		t.Fatal(err)
	}
	if o.Reason == ReasonStartGrace || o.Action != ActionFailure || o.NewPID != young {
		t.Fatalf("outcome %s, want the hung java %d stopped (a failed start: hung in its watch window)", o, young)
	}
	testkit.Eventually(t, 5*time.Second, "the hung java to be gone", func() bool { return !alive(t, int(young)) })
}
