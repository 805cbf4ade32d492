package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// recordAt journals a successful restart of deployment 1 at the given time.
func recordAt(t *testing.T, st *state.DB, at time.Time) {
	t.Helper()
	e := state.Entry{Time: at, DeploymentID: 1, Deployment: "churn", Action: state.ActionRestart, Result: state.ResultSuccess}
	if _, err := st.Record(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// journalTimes returns the times of every journal row, newest first.
func journalTimes(t *testing.T, st *state.DB) []time.Time {
	t.Helper()
	es, err := st.Journal(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ts []time.Time
	for _, e := range es {
		ts = append(ts, e.Time)
	}
	return ts
}

// TestJournalPruning: rows older than the retention go at start and at every
// interval after it; newer rows and the restart count stay.
func TestJournalPruning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	recordAt(t, st, now.Add(-2*time.Hour))
	recordAt(t, st, now.Add(-time.Minute))

	stop := startJournalPruning(ctx, promslog.NewNopLogger(), st, time.Hour, 20*time.Millisecond)
	defer stop()
	testkit.Eventually(t, 10*time.Second, "the old row to be pruned at start", func() bool {
		return len(journalTimes(t, st)) == 1
	})
	// A row that ages past the retention later goes at a later round.
	recordAt(t, st, now.Add(-3*time.Hour))
	testkit.Eventually(t, 10*time.Second, "the old row to be pruned periodically", func() bool {
		return len(journalTimes(t, st)) == 1
	})
	stop()
	if ts := journalTimes(t, st); len(ts) != 1 || !ts[0].Equal(now.Add(-time.Minute)) {
		t.Errorf("journal holds rows of %v, want only the one of %v", ts, now.Add(-time.Minute))
	}
	if counts, err := st.RestartCounts(ctx); err != nil || counts[1] != 3 {
		t.Errorf("restart count %d (%v), want 3: pruning must not lower it", counts[1], err)
	}
}

// TestRemediatorPrunesJournal: the real remediator, with the default
// retention of 90 days, prunes a 100-day-old row at start.
func TestRemediatorPrunesJournal(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	st, err := state.Open(context.Background(), h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	recordAt(t, st, now.Add(-100*24*time.Hour))
	recent := now.Add(-80 * 24 * time.Hour)
	recordAt(t, st, recent)

	startRemediator(t, h)
	testkit.Eventually(t, 10*time.Second, "the 100-day-old row to be pruned", func() bool {
		return len(journalTimes(t, st)) == 1
	})
	if ts := journalTimes(t, st); len(ts) != 1 || !ts[0].Equal(recent) {
		t.Errorf("journal holds rows of %v, want only the 80-day-old one", ts)
	}
}
