package state_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

func TestRestartPolicy(t *testing.T) {
	ctx := context.Background()
	st, ro := openBoth(t)

	// Before the remediator ever wrote a policy, every reader sees clean
	// records.
	for name, db := range map[string]*state.DB{"read-write": st, "read-only": ro} {
		p, err := db.RestartPolicy(ctx, 7)
		if err != nil || p != (state.RestartPolicy{DeploymentID: 7}) {
			t.Errorf("%s: RestartPolicy = %+v, %v; want a clean record", name, p, err)
		}
		if ps, err := db.RestartPolicies(ctx); err != nil || len(ps) != 0 {
			t.Errorf("%s: RestartPolicies = %+v, %v; want none", name, ps, err)
		}
		if n, err := db.StartsSince(ctx, 7, time.Time{}); err != nil || n != 0 {
			t.Errorf("%s: StartsSince = %d, %v; want 0", name, n, err)
		}
	}

	now := time.UnixMilli(1740830400123) // times are kept to the millisecond
	for _, tc := range []struct {
		name string
		p    state.RestartPolicy
	}{
		{"backoff", state.RestartPolicy{DeploymentID: 7, ConsecutiveFailures: 2, NextStart: now.Add(20 * time.Second)}},
		{"given up", state.RestartPolicy{DeploymentID: 7, ConsecutiveFailures: 5, NextStart: now.Add(time.Minute),
			GaveUpUntil: now.Add(time.Hour), GaveUpReason: "5 consecutive failed starts"}},
		{"watch window", state.RestartPolicy{DeploymentID: 7, ProbationPID: 4242, ProbationUntil: now.Add(time.Minute)}},
		{"other deployment", state.RestartPolicy{DeploymentID: 3, ConsecutiveFailures: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.SaveRestartPolicy(ctx, tc.p); err != nil {
				t.Fatal(err)
			}
			for name, db := range map[string]*state.DB{"read-write": st, "read-only": ro} {
				got, err := db.RestartPolicy(ctx, tc.p.DeploymentID)
				if err != nil || !equalPolicy(got, tc.p) {
					t.Errorf("%s: read back %+v, %v; want %+v", name, got, err, tc.p)
				}
			}
		})
	}
	ps, err := ro.RestartPolicies(ctx)
	if err != nil || len(ps) != 2 || ps[0].DeploymentID != 3 || ps[1].DeploymentID != 7 {
		t.Errorf("RestartPolicies = %+v, %v; want deployments 3 and 7", ps, err)
	}
	// The last save of 7 replaced the whole record: it is no longer given up.
	if p, _ := st.RestartPolicy(ctx, 7); p.GaveUp(now) {
		t.Errorf("deployment 7 still given up after a save that cleared it: %+v", p)
	}

	// Starts: counted since a time, forgotten before another.
	for i := range 5 {
		if err := st.RecordStart(ctx, 7, now.Add(time.Duration(i)*10*time.Minute), now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordStart(ctx, 3, now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		since time.Time
		want  int
	}{{time.Time{}, 5}, {now, 5}, {now.Add(25 * time.Minute), 2}, {now.Add(time.Hour), 0}} {
		if n, err := ro.StartsSince(ctx, 7, tc.since); err != nil || n != tc.want {
			t.Errorf("StartsSince(%s) = %d, %v; want %d", tc.since.Sub(now), n, err, tc.want)
		}
	}
	// A start an hour later forgets those older than its window.
	if err := st.RecordStart(ctx, 7, now.Add(time.Hour), now.Add(time.Hour-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := st.StartsSince(ctx, 7, time.Time{}); err != nil || n != 3 {
		t.Errorf("after pruning: %d starts, %v; want 3 (40, 50 and 60 minutes)", n, err)
	}

	// A reset leaves a clean record, and the other deployment alone.
	if err := st.ResetRestartPolicy(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if p, err := st.RestartPolicy(ctx, 7); err != nil || p != (state.RestartPolicy{DeploymentID: 7}) {
		t.Errorf("after reset: %+v, %v; want a clean record", p, err)
	}
	if n, _ := st.StartsSince(ctx, 7, time.Time{}); n != 0 {
		t.Errorf("after reset: %d starts remembered", n)
	}
	if ps, _ := st.RestartPolicies(ctx); len(ps) != 2 {
		t.Errorf("after reset: %d records, want 2 (a clean one is kept)", len(ps))
	}
	if p, _ := st.RestartPolicy(ctx, 3); p.ConsecutiveFailures != 1 {
		t.Errorf("reset of 7 touched 3: %+v", p)
	}
	if n, _ := st.StartsSince(ctx, 3, time.Time{}); n != 1 {
		t.Errorf("reset of 7 touched the starts of 3: %d", n)
	}
}

func equalPolicy(a, b state.RestartPolicy) bool {
	return a.DeploymentID == b.DeploymentID && a.ConsecutiveFailures == b.ConsecutiveFailures &&
		a.NextStart.Equal(b.NextStart) && a.GaveUpUntil.Equal(b.GaveUpUntil) && a.GaveUpReason == b.GaveUpReason &&
		a.ProbationPID == b.ProbationPID && a.ProbationUntil.Equal(b.ProbationUntil)
}

// TestRestartPolicyOlderDatabase: a state database written by a version
// without the restart policy has no policy tables. A read-only reader sees
// clean records without creating them; a read-write open adds them.
func TestRestartPolicyOlderDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
		deployment_id INTEGER NOT NULL, deployment TEXT NOT NULL, action TEXT NOT NULL, result TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '', old_pid INTEGER NOT NULL DEFAULT 0, new_pid INTEGER NOT NULL DEFAULT 0,
		duration_seconds REAL NOT NULL DEFAULT 0)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	tables := func() []string {
		t.Helper()
		db, err := sql.Open("sqlite", path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'restart%' ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return names
	}

	ro, err := state.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ro.RestartPolicy(ctx, 7); err != nil || p != (state.RestartPolicy{DeploymentID: 7}) {
		t.Errorf("read-only RestartPolicy = %+v, %v; want a clean record", p, err)
	}
	if ps, err := ro.RestartPolicies(ctx); err != nil || len(ps) != 0 {
		t.Errorf("read-only RestartPolicies = %+v, %v; want none", ps, err)
	}
	if n, err := ro.StartsSince(ctx, 7, time.Time{}); err != nil || n != 0 {
		t.Errorf("read-only StartsSince = %d, %v; want 0", n, err)
	}
	ro.Close()
	if got := tables(); len(got) != 0 {
		t.Fatalf("a read-only reader created %q", got)
	}

	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := strings.Join(tables(), " "); got != "restart_policy restart_starts restarts" {
		t.Errorf("tables after a read-write open: %q", got)
	}
	want := state.RestartPolicy{DeploymentID: 7, ConsecutiveFailures: 1}
	if err := st.SaveRestartPolicy(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordStart(ctx, 7, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if p, err := st.RestartPolicy(ctx, 7); err != nil || !equalPolicy(p, want) {
		t.Errorf("RestartPolicy = %+v, %v; want %+v", p, err, want)
	}
}

// TestInFlight: a remediation noted under way stays until cleared, with the
// alert that asked for it, and a re-note replaces the alert.
func TestInFlight(t *testing.T) {
	ctx := context.Background()
	st, ro := openBoth(t)
	for _, step := range []struct {
		set, clear int64
		alert      string
		want       map[int64]string
	}{
		{set: 1, alert: "SteamDeploymentDown", want: map[int64]string{1: "SteamDeploymentDown"}},
		{set: 1, alert: "SteamDeploymentUnresponsive", want: map[int64]string{1: "SteamDeploymentUnresponsive"}},
		{set: 2, alert: "SteamDeploymentDown", want: map[int64]string{1: "SteamDeploymentUnresponsive", 2: "SteamDeploymentDown"}},
		{clear: 1, want: map[int64]string{2: "SteamDeploymentDown"}},
	} {
		var err error
		if step.set != 0 {
			err = st.SetInFlight(ctx, step.set, step.alert)
		} else {
			err = st.ClearInFlight(ctx, step.clear)
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := ro.InFlight(ctx)
		if err != nil || len(got) != len(step.want) {
			t.Fatalf("InFlight = %v, %v; want %v", got, err, step.want)
		}
		for id, alert := range step.want {
			if got[id] != alert {
				t.Errorf("InFlight = %v, want %v", got, step.want)
			}
		}
	}
}
