package state_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/internal/state"
)

// openBoth opens a new state database read-write, as the remediator does,
// and read-only beside it, as the exporter and status do; both are closed
// when the test ends.
func openBoth(t *testing.T) (rw, ro *state.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	rw, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rw.Close() })
	ro, err = state.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return rw, ro
}

// TestRestartCountsSurvivePruning: the README tells operators they may prune
// the journal at will; the restart counters the exporter publishes must not
// drop when they do.
func TestRestartCountsSurvivePruning(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, e := range []state.Entry{
		{DeploymentID: 7, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: 7, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: 7, Action: state.ActionRestart, Result: state.ResultFailure},
		{DeploymentID: 8, Action: state.ActionNoop, Result: state.ResultSuccess},
	} {
		if _, err := st.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// The README's recipe, as an operator runs it beside the remediator.
	operator, err := sqlitefile.Open(path, sqlitefile.Options{Mode: sqlitefile.ReadWrite, BusyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()
	if _, err := operator.Exec(`DELETE FROM journal WHERE time < '9999'`); err != nil {
		t.Fatal(err)
	}
	if es, err := st.Journal(ctx, 0, 100); err != nil || len(es) != 0 {
		t.Fatalf("journal after pruning: %d entries (%v), want none", len(es), err)
	}
	counts, err := st.RestartCounts(ctx)
	if err != nil || counts[7] != 2 || len(counts) != 1 {
		t.Errorf("restart counts after pruning %v (%v), want deployment 7: 2", counts, err)
	}
}
