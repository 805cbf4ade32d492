package observe_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

func newObserver(t *testing.T, h *testkit.Home) *observe.Observer {
	t.Helper()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	return observe.New(steam.NewRegistry(h.Home), in)
}

func TestAll(t *testing.T) {
	h := testkit.NewHome(t)
	running, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	dead, deadProc := h.Run(testkit.Spec{Name: "fraud", LogicalName: "fraud"})
	testkit.Kill(t, deadProc)
	reused := h.Add(testkit.Spec{Name: "reused", LogicalName: "reused"})
	h.Exec("UPDATE service SET process_id = ? WHERE id = ?", testkit.StartForeign(t).Pid, reused.ID)
	noPID := h.Add(testkit.Spec{Name: "idle", LogicalName: "idle"})
	noWar := h.Add(testkit.Spec{Name: "nowar", LogicalName: "nowar", NoWar: true})

	obs, err := newObserver(t, h).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{running.ID: "running", dead.ID: "dead", reused.ID: "pid_reused",
		noPID.ID: "no_pid", noWar.ID: steam.StatusMisconfigured}
	if len(obs) != len(want) {
		t.Fatalf("got %d observations, want %d", len(obs), len(want))
	}
	for _, o := range obs {
		if o.Status != want[o.ID] {
			t.Errorf("deployment %s: status %q, want %q", o.Name, o.Status, want[o.ID])
		}
		if o.Running() != (o.ID == running.ID) {
			t.Errorf("deployment %s: Running() = %v", o.Name, o.Running())
		}
	}
	for _, o := range obs {
		if o.ID == running.ID && (o.Process.PID != int(running.PID) || o.Process.StartTime == 0 || o.Process.ResidentBytes == 0) {
			t.Errorf("running deployment measured as %+v", o.Process)
		}
	}
}

// An observer re-reads the command line of a java it verified only when its
// start time changes; the registry's row still decides which PID to look at.
func TestRemembersVerified(t *testing.T) {
	h := testkit.NewHome(t)
	// testdata/proc's 4242 is model 3's churn.war on port 8080.
	for _, name := range []string{"a", "b"} {
		h.Add(testkit.Spec{Name: name, LogicalName: name})
	}
	churn := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn", Port: 8080})
	h.Exec("UPDATE service SET process_id = 4242 WHERE id = ?", churn.ID)
	root := testkit.ProcFixture(t, h.Home.Dir)
	in, err := procid.NewInspector(root)
	if err != nil {
		t.Fatal(err)
	}
	o := observe.New(steam.NewRegistry(h.Home), in)
	write := func(file, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "4242", file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat, err := os.ReadFile(filepath.Join(root, "4242", "stat"))
	if err != nil {
		t.Fatal(err)
	}

	for _, step := range []struct {
		name   string
		change func()
		want   string
	}{
		{"first look", func() {}, "running"},
		{"command line not read again", func() { write("cmdline", "sleep\x00600\x00") }, "running"},
		// gopsutil counts start times in whole seconds: 100 ticks.
		{"new start time: inspected afresh", func() { write("stat", strings.Replace(string(stat), " 12345 ", " 12445 ", 1)) }, "pid_reused"},
		{"still not trusted", func() {}, "pid_reused"},
	} {
		step.change()
		running, err := o.Running(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := "pid_reused"
		if len(running) == 1 && running[0].ID == churn.ID {
			got = running[0].Status
		} else if len(running) > 0 {
			t.Fatalf("%s: running %+v", step.name, running)
		}
		if got != step.want {
			t.Errorf("%s: churn is %s, want %s", step.name, got, step.want)
		}
	}
}

// Running takes a java pinned since the last look as running without
// reading it again, and still sees at once that it died.
func TestRunningTrustsOnlyALivePin(t *testing.T) {
	h := testkit.NewHome(t)
	d, proc := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	o := newObserver(t, h)
	var last observe.Observation
	for range 2 { // the second look pins the java
		obs, err := o.All(context.Background())
		if err != nil || len(obs) != 1 || !obs[0].Running() {
			t.Fatalf("All: %+v, %v", obs, err)
		}
		last = obs[0]
	}
	running, err := o.Running(context.Background())
	if err != nil || len(running) != 1 || running[0].ID != d.ID {
		t.Fatalf("Running before the kill: %+v, %v", running, err)
	}
	if got := running[0].Process; got.StartTime != last.Process.StartTime || got.ResidentBytes != last.Process.ResidentBytes {
		t.Errorf("Running gave %+v, want the last look's %+v", got, last.Process)
	}
	testkit.Kill(t, proc)
	running, err = o.Running(context.Background())
	if err != nil || len(running) != 0 {
		t.Errorf("Running after the kill: %+v, %v", running, err)
	}
}

// Verify looks at one row's PID afresh, as All does, and refuses a row that
// identifies no java rather than calling whatever runs there not running.
func TestVerify(t *testing.T) {
	h := testkit.NewHome(t)
	running, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	reused := h.Add(testkit.Spec{Name: "reused", LogicalName: "reused"})
	h.Exec("UPDATE service SET process_id = ? WHERE id = ?", testkit.StartForeign(t).Pid, reused.ID)
	noWar := h.Add(testkit.Spec{Name: "nowar", LogicalName: "nowar", NoWar: true})
	h.Exec("UPDATE service SET process_id = ? WHERE id = ?", running.PID, noWar.ID)
	o := newObserver(t, h)
	for _, tc := range []struct {
		name string
		id   int64
		want procid.Status
		err  error
	}{
		{"its java", running.ID, procid.StatusRunning, nil},
		{"another process", reused.ID, procid.StatusPIDReused, nil},
		{"no war to identify it by", noWar.ID, "", observe.ErrUnidentified},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := o.Verify(h.Deployment(tc.id))
			if !errors.Is(err, tc.err) || p.Status != tc.want {
				t.Errorf("Verify: %q, %v; want %q, %v", p.Status, err, tc.want, tc.err)
			}
		})
	}
}
