package remediate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestRowDeletedWhileStarting: Steam deletes the deployment while its java
// starts; the java is stopped, not left holding the port.
func TestRowDeletedWhileStarting(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{ReadyAfter: time.Second}})
	log := filepath.Join(h.Home.LogDir(), "deployment-1.log")
	go func() {
		for {
			if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("starting deployment")) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		_, _ = h.DB.Exec(`DELETE FROM service WHERE id = ?`, d.ID)
	}()
	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if o.Action != ActionCancelled || o.Reason != ReasonRowDeleted || o.NewPID == 0 {
		t.Fatalf("outcome %s, want cancelled (row_deleted)", o)
	}
	testkit.Eventually(t, 10*time.Second, "the orphan java to be gone", func() bool { return !alive(t, int(o.NewPID)) })
	if js := e.journal(t, d.ID); len(js) != 1 || js[0].Action != string(ActionCancelled) {
		t.Errorf("journal:%s", describeJournal(js))
	}
}

// TestRowDeletedInWatchWindow: Steam deletes the deployment after its new
// PID was recorded (having stopped the PID it read before): the engine's own
// java is stopped within its watch window, not left holding the port, and
// the journal says cancelled after the restart.
func TestRowDeletedInWatchWindow(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) { c.WatchAfterReady = time.Hour })
	d := h.Add(testkit.Spec{Name: "churn"})
	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
		t.Fatalf("outcome %s (%v), want restart success", o, err)
	}
	h.Exec(`DELETE FROM service WHERE id = ?`, d.ID)
	testkit.Eventually(t, 15*time.Second, "the orphan java to be gone", func() bool { return !alive(t, int(o.NewPID)) })
	var js []state.Entry
	testkit.Eventually(t, 10*time.Second, "the cancel journaled", func() bool {
		js = e.journal(t, d.ID)
		return len(js) == 2
	})
	if js[0].Action != string(ActionRestart) ||
		js[1].Action != string(ActionCancelled) || js[1].Reason != string(ReasonRowDeleted) || js[1].NewPID != o.NewPID {
		t.Errorf("journal:%s\nwant cancelled (row_deleted) of PID %d after the restart", describeJournal(js), o.NewPID)
	}
	if pol, err := e.state.RestartPolicy(context.Background(), d.ID); err != nil || pol.ProbationPID != 0 {
		t.Errorf("policy %+v (%v), want the watch window closed", pol, err)
	}
	// reconcile --once reports what became of the start.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := e.WaitWatched(ctx, []Outcome{o}); err != nil || got[0].Action != ActionCancelled || got[0].Down() {
		t.Errorf("WaitWatched: %v (%v), want cancelled, not down", got, err)
	}
}

// TestLockedRegistryIsRetried: with Steam's write lock held past the busy
// timeout the remediation fails, and the engine tries again by itself: the
// deployment serves after the lock is released, with no second notification.
func TestLockedRegistryIsRetried(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) { c.RetryBackoff = 200 * time.Millisecond })
	e.registry.BusyTimeout = 200 * time.Millisecond
	d := h.Add(testkit.Spec{Name: "churn"})

	release := h.HoldWriteLock()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	testkit.Eventually(t, 10*time.Second, "a transient failure", func() bool {
		return testutil.ToFloat64(e.metrics.retries.WithLabelValues("scheduled")) >= 1
	})
	release()
	testkit.Eventually(t, 20*time.Second, "the deployment to be restarted", func() bool {
		return countActions(e.journal(t, d.ID), state.ActionRestart, state.ResultSuccess) == 1
	})
	running(t, h, d.ID)
	if n := countActions(e.journal(t, d.ID), string(ActionError), ""); n == 0 {
		t.Errorf("the transient failure was not journaled:%s", describeJournal(e.journal(t, d.ID)))
	}
}

// TestDeathInWatchWindowIsNoSuccess: a war that dies right after becoming
// ready counts as a failed restart, never as a successful one.
func TestDeathInWatchWindowIsNoSuccess(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) { c.WatchAfterReady = 3 * time.Second })
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{Mode: "crash_after_ready", CrashAfter: 200 * time.Millisecond}})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	testkit.Eventually(t, 20*time.Second, "a death in the watch window", func() bool {
		return countActions(e.journal(t, d.ID), state.ActionFailure, "") >= 1
	})
	success := testutil.ToFloat64(e.metrics.actions.WithLabelValues(string(ActionRestart), string(ResultSuccess)))
	failure := testutil.ToFloat64(e.metrics.actions.WithLabelValues(string(ActionRestart), string(ResultFailure)))
	if success != 0 || failure < 1 {
		t.Errorf("restart success %v, failure %v; want 0 and at least 1", success, failure)
	}
}

// TestInterruptedStartIsResumed: a remediator stopped while its java starts
// leaves it running; the next one adopts it as soon as it serves, with no
// notification.
func TestInterruptedStartIsResumed(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{ReadyAfter: 1500 * time.Millisecond}})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	e.waitLogged(t, "Started deployment")
	_ = shutdown(t, e, cancelled())
	pol, err := e.state.RestartPolicy(context.Background(), d.ID)
	if err != nil || pol.StartingPID == 0 {
		t.Fatalf("policy %+v (%v), want the interrupted start remembered", pol, err)
	}
	java := int(pol.StartingPID)
	if !alive(t, java) {
		t.Fatal("the interrupted start's java was stopped")
	}

	e2 := newEngine(t, h)
	if err := e2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the resumed java's PID in the row", func() bool {
		return h.Deployment(d.ID).PID == int64(java)
	})
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts, want 1 (nothing started twice)", n)
	}
}

// TestSweepRemovesStaleLocks: lock files of deployments Steam no longer has
// are removed; those of its deployments stay.
func TestSweepRemovesStaleLocks(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	d, _ := h.Run(testkit.Spec{Name: "churn"})
	if err := os.MkdirAll(e.cfg.LockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{d.ID, 999} {
		if err := os.WriteFile(e.lockPath(id), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Sweep(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.lockPath(999)); !os.IsNotExist(err) {
		t.Errorf("lock of unknown deployment 999: %v, want removed", err)
	}
	if _, err := os.Stat(e.lockPath(d.ID)); err != nil {
		t.Errorf("lock of deployment %d: %v, want kept", d.ID, err)
	}
}
