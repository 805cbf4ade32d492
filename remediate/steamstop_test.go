package remediate

import (
	"context"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestSteamStopAfterRecord: Steam's stop of the java that died deletes or
// stops the row only after the remediator recorded its new java (a second
// later, a fake java serves in milliseconds). The new java is stopped in its
// watch window, not left serving a deployment nobody wants.
func TestSteamStopAfterRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, query, reason string
	}{
		{"row deleted", `DELETE FROM service WHERE id = ?`, string(ReasonRowDeleted)},
		{"row stopped", `UPDATE service SET state = 'stopped' WHERE id = ?`, string(ReasonRowStopped)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h)
			d := h.Add(testkit.Spec{Name: "churn"})
			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
				t.Fatalf("outcome %s (%v), want a successful restart", o, err)
			}
			h.Exec(tc.query, d.ID)
			testkit.Eventually(t, 10*time.Second, "the new java to be stopped", func() bool { return !alive(t, int(o.NewPID)) })
			var js []state.Entry
			testkit.Eventually(t, 5*time.Second, "the cancellation journaled", func() bool {
				js = e.journal(t, d.ID)
				return countActions(js, string(ActionCancelled), state.ResultSuccess) == 1
			})
			if last := js[len(js)-1]; last.Reason != tc.reason || last.NewPID != o.NewPID {
				t.Errorf("journal:%s\nwant the last entry cancelled (%s) of PID %d", describeJournal(js), tc.reason, o.NewPID)
			}
		})
	}
}
