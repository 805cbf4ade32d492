package main

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestRemediatorStopsJavaOfDeletedRow: Steam deletes the deployment's row
// right after the remediator recorded its new PID (Steam stopped the PID it
// had read before, as it does before deleting a row). The java the
// remediator started is stopped within its watch window, its port freed,
// and the journal says cancelled (row_deleted) after the restart.
func TestRemediatorStopsJavaOfDeletedRow(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn"})
	r := startRemediator(t, h, "--remediate.watch-after-ready=5m")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("remediator's log:\n%s", r.stderr.String())
		}
	})
	r.notify(t, d.ID)
	testkit.Eventually(t, 30*time.Second, "the restart journaled", func() bool {
		return journaledResult(t, h, d.ID, state.ActionRestart, state.ResultSuccess) == 1
	})
	java := h.Deployment(d.ID).PID
	if java == 0 || syscall.Kill(int(java), 0) != nil {
		t.Fatalf("row PID %d does not run", java)
	}
	h.Exec(`DELETE FROM service WHERE id = ?`, d.ID)

	testkit.Eventually(t, 20*time.Second, "the remediator's java to be stopped", func() bool {
		return syscall.Kill(int(java), 0) != nil
	})
	testkit.Eventually(t, 10*time.Second, "the cancel journaled", func() bool {
		return journaledResult(t, h, d.ID, "cancelled", state.ResultSuccess) == 1
	})
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.Port)); err == nil {
		c.Close()
		t.Errorf("port %d still answers", d.Port)
	}
	if n := journaled(t, h, d.ID, state.ActionFailure); n != 0 {
		t.Errorf("%d failures journaled, want 0: a cancelled java did not fail", n)
	}
}
