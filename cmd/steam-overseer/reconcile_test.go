package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// reconcileHome is a home with one deployment of each kind a sweep meets.
type reconcileHome struct {
	*testkit.Home
	live, dead, reused, stopped steam.Deployment
	livePID                     int
	foreign                     *os.Process
}

func newReconcileHome(t *testing.T) reconcileHome {
	h := reconcileHome{Home: testkit.NewHome(t)}
	var p *os.Process
	h.live, p = h.Run(testkit.Spec{Name: "live", LogicalName: "live"})
	h.livePID = p.Pid
	h.dead, p = h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	testkit.Kill(t, p)
	// After a reboot: the row's PID now belongs to an unrelated program.
	h.reused = h.Add(testkit.Spec{Name: "reused", LogicalName: "reused"})
	h.foreign = testkit.StartForeign(t)
	if err := h.SetPID(h.reused.ID, h.foreign.Pid); err != nil {
		t.Fatal(err)
	}
	// Steam stopped this one: its row is not "started", so it is not ours.
	h.stopped = h.Add(testkit.Spec{Name: "stopped", LogicalName: "stopped", State: "stopped"})
	return h
}

func (h reconcileHome) reconcile(t *testing.T, dryRun bool) (int, string) {
	t.Helper()
	var out bytes.Buffer
	f := &reconcileFlags{location: location{home: h.Home.Home.Dir}, once: true, dryRun: dryRun,
		engine: engineFlags{javaPath: h.Java, concurrency: 2, startTimeout: 20 * time.Second, watchAfterReady: 500 * time.Millisecond}}
	code := runReconcile(context.Background(), promslog.NewNopLogger(), f, &out)
	return code, out.String()
}

// running returns the deployment's PID if it is verified running and serves.
func running(t *testing.T, h *testkit.Home, id int64) int {
	t.Helper()
	d := h.Deployment(id)
	identity, ok := d.Identity()
	if !ok {
		t.Fatalf("deployment %d: no identity", id)
	}
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	if p := in.Inspect(int(d.PID), identity); p.Status != procid.StatusRunning {
		return 0
	}
	if err := testkit.WaitReady(context.Background(), int(d.Port), time.Second); err != nil {
		return 0
	}
	return int(d.PID)
}

func TestReconcileOnce(t *testing.T) {
	t.Parallel()
	h := newReconcileHome(t)

	code, out := h.reconcile(t, false)
	t.Logf("reconcile --once:\n%s", out)
	if code != 0 {
		t.Fatalf("reconcile --once exited %d, want 0:\n%s", code, out)
	}
	if got := running(t, h.Home, h.live.ID); got != h.livePID {
		t.Errorf("live deployment: running PID %d, want it untouched as %d", got, h.livePID)
	}
	for _, d := range []steam.Deployment{h.dead, h.reused} {
		if running(t, h.Home, d.ID) == 0 {
			t.Errorf("deployment %s was not brought back:\n%s", d.Name, out)
		}
	}
	if err := syscall.Kill(h.foreign.Pid, 0); err != nil {
		t.Errorf("the unrelated process holding the reused PID was touched: %v", err)
	}
	if got := h.Deployment(h.stopped.ID).PID; got != 0 {
		t.Errorf("stopped deployment got PID %d; Steam stopped it, it must stay stopped", got)
	}
	for _, want := range []string{"dead  restart  success", "reused  restart  success", "4 deployments, 0 down"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A second sweep finds everything running and starts nothing.
	before := map[int64]int{}
	for _, d := range []steam.Deployment{h.live, h.dead, h.reused} {
		before[d.ID] = running(t, h.Home, d.ID)
	}
	if code, out := h.reconcile(t, false); code != 0 || strings.Contains(out, "restart") {
		t.Fatalf("second sweep: exit %d, want 0 with no restart:\n%s", code, out)
	}
	for id, pid := range before {
		if got := running(t, h.Home, id); got != pid {
			t.Errorf("deployment %d: PID %d after the second sweep, want %d", id, got, pid)
		}
	}
}

func TestReconcileDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	h := newReconcileHome(t)
	deadPID := h.Deployment(h.dead.ID).PID

	code, out := h.reconcile(t, true)
	if code != 1 {
		t.Errorf("dry run with dead deployments exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"dead  restart  planned", "reused  restart  planned", "4 deployments, 2 down"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), strings.Join(strings.Fields(want), "  ")) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := h.Deployment(h.dead.ID).PID; got != deadPID {
		t.Errorf("dry run changed the row's PID from %d to %d", deadPID, got)
	}
	if err := testkit.WaitReady(context.Background(), int(h.dead.Port), 300*time.Millisecond); err == nil {
		t.Error("dry run started the dead deployment")
	}
	if _, err := os.Stat(h.Home.Home.StatePath()); !os.IsNotExist(err) {
		t.Errorf("dry run created the state database (stat: %v)", err)
	}
}

func TestReconcileOnceFailsWhileDown(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	crash := h.Add(testkit.Spec{Name: "crash", LogicalName: "crash",
		Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})
	broken := h.Add(testkit.Spec{Name: "broken", LogicalName: "broken", NoWar: true})
	var out bytes.Buffer
	f := &reconcileFlags{location: location{home: h.Home.Dir}, once: true, engine: engineFlags{javaPath: h.Java, startTimeout: 10 * time.Second, watchAfterReady: 500 * time.Millisecond}}
	if code := runReconcile(context.Background(), promslog.NewNopLogger(), f, &out); code != 1 {
		t.Errorf("exit %d, want 1 while deployments stay down:\n%s", code, &out)
	}
	for _, want := range []string{
		fmt.Sprintf("%d  crash  restart  failure", crash.ID),
		fmt.Sprintf("%d  broken  misconfigured  failure", broken.ID),
	} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), "  "), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}

// TestReconcileOnceWatchesRestarts: --once exits only after the watch
// window of what it restarted; a restarted deployment that died in it is
// down (exit 1) and its failed start is counted, so that the next run holds
// back; one that lived through it is counted healthy.
func TestReconcileOnceWatchesRestarts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		behaviour testkit.Behaviour
		watch     time.Duration
		wantCode  int
		wantLine  string
		// wantFailures is the policy's count after the run.
		wantFailures int
		// wantNext is the next run's line for the deployment.
		wantNext string
	}{
		{name: "dies within the window", behaviour: testkit.Behaviour{Mode: "crash_after_ready", CrashAfter: 2 * time.Second},
			watch: time.Hour, wantCode: 1, wantLine: "failure  failure", wantFailures: 1, wantNext: "skip  failure"},
		{name: "lives through the window", behaviour: testkit.Behaviour{Mode: "normal"},
			watch: time.Second, wantCode: 0, wantLine: "restart  success", wantFailures: 0, wantNext: "noop  success"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn", Behaviour: tc.behaviour})
			run := func() (int, string) {
				var out bytes.Buffer
				f := &reconcileFlags{location: location{home: h.Home.Dir}, once: true,
					engine: engineFlags{javaPath: h.Java, startTimeout: 20 * time.Second, watchAfterReady: tc.watch}}
				code := runReconcile(context.Background(), promslog.NewNopLogger(), f, &out)
				return code, strings.Join(strings.Fields(out.String()), "  ")
			}
			code, out := run()
			if code != tc.wantCode || !strings.Contains(out, fmt.Sprintf("%d  churn  %s", d.ID, tc.wantLine)) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.wantCode, tc.wantLine, out)
			}
			st, err := state.OpenReadOnly(h.Home.StatePath())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			pol, err := st.RestartPolicy(context.Background(), d.ID)
			if err != nil || pol.ConsecutiveFailures != tc.wantFailures || pol.ProbationPID != 0 {
				t.Errorf("policy after the run %+v (%v), want %d failures and the window closed", pol, err, tc.wantFailures)
			}
			if _, out := run(); !strings.Contains(out, fmt.Sprintf("%d  churn  %s", d.ID, tc.wantNext)) {
				t.Errorf("next run, want %q:\n%s", tc.wantNext, out)
			}
		})
	}
}

func TestRemediatorReconcileInterval(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	startRemediator(t, h, "--reconcile.interval=200ms")
	testkit.Kill(t, p)
	// No webhook is sent: the periodic sweep alone brings it back.
	testkit.Eventually(t, 20*time.Second, "the sweep to restart the deployment", func() bool {
		pid := running(t, h, d.ID)
		return pid != 0 && pid != p.Pid
	})
}

// TestReconcileProcfs: --path.procfs is where the sweep reads processes: in
// a fixture where the deployment's recorded PID runs as its java, the dry
// run finds nothing to do.
func TestReconcileProcfs(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	fixture := h.FakeProcess(d, 4242) // a PID in the fixture only
	for _, tc := range []struct{ procfs, want string }{
		{procfs: "/proc", want: "restart"},
		{procfs: fixture, want: "noop"},
	} {
		t.Run(tc.procfs, func(t *testing.T) {
			var out bytes.Buffer
			f := &reconcileFlags{location: location{home: h.Home.Dir}, once: true, dryRun: true,
				engine: engineFlags{javaPath: h.Java, procRoot: tc.procfs}}
			runReconcile(context.Background(), promslog.NewNopLogger(), f, &out)
			var action string
			for _, line := range strings.Split(out.String(), "\n") {
				if fields := strings.Fields(line); len(fields) > 2 && fields[1] == "churn" {
					action = fields[2]
				}
			}
			if action != tc.want {
				t.Errorf("dry run with --path.procfs=%s plans %q, want %s:\n%s", tc.procfs, action, tc.want, out.String())
			}
		})
	}
}
