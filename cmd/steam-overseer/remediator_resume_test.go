package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestRemediatorResumesInterruptedStart: the remediator SIGKILLed while the
// java it started is coming up; started again, it records that java's PID
// as soon as it serves, with no new notification and no second java.
func TestRemediatorResumesInterruptedStart(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "slow", Behaviour: testkit.Behaviour{ReadyAfter: 3 * time.Second}})
	r := startRemediator(t, h)
	r.notify(t, d.ID)
	testkit.Eventually(t, 10*time.Second, "the java to be started", func() bool {
		return strings.Contains(r.stderr.String(), "Started deployment")
	})
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.done

	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := st.RestartPolicy(context.Background(), d.ID)
	st.Close()
	if err != nil || pol.StartingPID == 0 {
		t.Fatalf("policy %+v (%v), want the interrupted start remembered", pol, err)
	}
	if got := h.Deployment(d.ID).PID; got == pol.StartingPID {
		t.Fatalf("row already holds PID %d before the java served", got)
	}

	startRemediator(t, h)
	testkit.Eventually(t, 15*time.Second, "the resumed java's PID in the row", func() bool {
		return h.Deployment(d.ID).PID == pol.StartingPID
	})
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts logged, want 1", n)
	}
}

// TestRemediatorOutlastsLockedRegistry: a notification arrives while another
// connection holds steam.db's write lock longer than the busy timeout (as
// Steam does while deploying); the remediator heals the deployment once the
// lock is released, with no second notification.
func TestRemediatorOutlastsLockedRegistry(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn"})
	r := startRemediator(t, h)
	// Locked before that read, the webhook has no last read to queue from
	// and answers 503 (TestRemediatorUnknownDeployments).
	testkit.Eventually(t, 30*time.Second, "the remediator's first read of steam.db", func() bool {
		return strings.Contains(r.stderr.String(), "Read Steam's deployments")
	})
	release := h.HoldWriteLock()
	go func() { // answered once the webhook's own look-up gives up
		_, _, _ = r.post(http.MethodPost, strings.NewReader(notification(d.ID, 0)), "")
	}()
	testkit.Eventually(t, 30*time.Second, "a transient failure", func() bool {
		return strings.Contains(r.stderr.String(), "retry 1 of 5")
	})
	release()
	testkit.Eventually(t, 30*time.Second, "the deployment healed", func() bool {
		return journaled(t, h, d.ID, state.ActionRestart) == 1
	})
	if err := testkit.WaitReady(context.Background(), int(h.Deployment(d.ID).Port), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
