package observe_test

import (
	"context"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/internal/testkit"
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

// Running trusts what an earlier round verified only while the PID names
// the same live process.
func TestRunningKnown(t *testing.T) {
	h := testkit.NewHome(t)
	d, proc := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	other, _ := h.Run(testkit.Spec{Name: "other", LogicalName: "other"})
	o := newObserver(t, h)
	ctx := context.Background()

	first, err := o.Running(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 {
		t.Fatalf("got %d running, want 2: %+v", len(first), first)
	}
	known := observe.Known{}
	for _, ob := range first {
		known[ob.ID] = ob.Process
	}
	// A marker Inspect never sets shows whether the known value was kept.
	marked := known[d.ID]
	marked.CPUSeconds = -1
	known[d.ID] = marked
	// Another process's start time: not to be trusted, inspected afresh.
	stale := known[other.ID]
	stale.CreateTime--
	stale.CPUSeconds = -1
	known[other.ID] = stale

	second, err := o.Running(ctx, known)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]procid.Process{}
	for _, ob := range second {
		got[ob.ID] = ob.Process
	}
	if got[d.ID].CPUSeconds != -1 {
		t.Errorf("a known, unchanged process was inspected again: %+v", got[d.ID])
	}
	if p, ok := got[other.ID]; !ok || p.CPUSeconds == -1 || p.CreateTime != stale.CreateTime+1 {
		t.Errorf("a process whose start time differs was trusted: %+v", p)
	}

	testkit.Kill(t, proc)
	third, err := o.Running(ctx, known)
	if err != nil {
		t.Fatal(err)
	}
	for _, ob := range third {
		if ob.ID == d.ID {
			t.Errorf("a killed known process is still running: %+v", ob.Process)
		}
	}
}
