package state_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

func TestPruneJournal(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-90 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		// times of the rows recorded, oldest first
		times      []time.Time
		wantPruned int64
	}{
		{name: "empty journal"},
		{name: "nothing old", times: []time.Time{cutoff, now}},
		{name: "old rows go, the cutoff itself stays",
			times:      []time.Time{cutoff.Add(-24 * time.Hour), cutoff.Add(-time.Nanosecond), cutoff, now},
			wantPruned: 2},
		// As text, "…:00Z" sorts after "…:00.5Z": compared as text, the
		// row half a second before the cutoff would stay.
		{name: "fractions compared as instants",
			times:      []time.Time{cutoff.Add(-500 * time.Millisecond), cutoff.Add(500 * time.Millisecond)},
			wantPruned: 1},
		{name: "more than one batch", times: repeat(cutoff.Add(-time.Hour), 2500), wantPruned: 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for _, at := range tc.times {
				e := state.Entry{Time: at, DeploymentID: 7, Action: state.ActionRestart, Result: state.ResultSuccess}
				if _, err := st.Record(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			n, err := st.PruneJournal(ctx, cutoff)
			if err != nil || n != tc.wantPruned {
				t.Fatalf("pruned %d rows (%v), want %d", n, err, tc.wantPruned)
			}
			left, err := st.Journal(ctx, 0, len(tc.times)+1)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(tc.times) - int(tc.wantPruned); len(left) != want {
				t.Errorf("%d rows left, want %d", len(left), want)
			}
			for _, e := range left {
				if e.Time.Before(cutoff) {
					t.Errorf("row of %s is left, older than the cutoff %s", e.Time, cutoff)
				}
			}
			// Restart counts stay monotonic: every successful restart
			// recorded is still counted.
			counts, err := st.RestartCounts(ctx)
			if err != nil || counts[7] != uint64(len(tc.times)) {
				t.Errorf("restart count %d (%v) after pruning, want %d", counts[7], err, len(tc.times))
			}
		})
	}
}

func repeat(at time.Time, n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = at
	}
	return ts
}
