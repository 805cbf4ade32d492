package remediate

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestRestartsDeadDeployment covers every way a recorded PID stops being
// the deployment: the deployment is started again, its new PID lands in the
// row, it answers /ping, the journal says so, and whatever owns the old PID
// is left alone.
func TestRestartsDeadDeployment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// breakIt turns a running deployment into a dead one and returns
		// the process that must survive the remediation, if any.
		breakIt func(t *testing.T, h *testkit.Home, d steam.Deployment, p *os.Process) *os.Process
	}{
		{
			name: "killed",
			breakIt: func(t *testing.T, _ *testkit.Home, _ steam.Deployment, p *os.Process) *os.Process {
				testkit.Kill(t, p)
				return nil
			},
		},
		{
			name: "zombie",
			breakIt: func(t *testing.T, h *testkit.Home, d steam.Deployment, p *os.Process) *os.Process {
				testkit.Kill(t, p)
				// A java of the deployment that exited and that nobody
				// waited for (yet): the row points at a zombie.
				cmd := h.Command(h.Java, d)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cmd.Wait() })
				if err := testkit.WaitReady(context.Background(), int(d.Port), 5*time.Second); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				testkit.Eventually(t, 5*time.Second, "a zombie", func() bool {
					b, _ := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/stat")
					return strings.Contains(string(b), ") Z ")
				})
				if err := h.SetPID(d.ID, cmd.Process.Pid); err != nil {
					t.Fatal(err)
				}
				return nil
			},
		},
		{
			name: "pid reused by an unrelated process",
			breakIt: func(t *testing.T, h *testkit.Home, d steam.Deployment, p *os.Process) *os.Process {
				testkit.Kill(t, p)
				other := testkit.StartForeign(t)
				if err := h.SetPID(d.ID, other.Pid); err != nil {
					t.Fatal(err)
				}
				return other
			},
		},
		{
			name: "pid reused by another deployment's java",
			breakIt: func(t *testing.T, h *testkit.Home, d steam.Deployment, p *os.Process) *os.Process {
				testkit.Kill(t, p)
				_, other := h.Run(testkit.Spec{Name: "other", LogicalName: "other"})
				if err := h.SetPID(d.ID, other.Pid); err != nil {
					t.Fatal(err)
				}
				return other
			},
		},
		{
			name: "no pid recorded",
			breakIt: func(t *testing.T, h *testkit.Home, d steam.Deployment, p *os.Process) *os.Process {
				testkit.Kill(t, p)
				if err := h.SetPID(d.ID, 0); err != nil {
					t.Fatal(err)
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h)
			d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
			bystander := tc.breakIt(t, h, d, p)
			var bystanderTicks uint64
			if bystander != nil {
				bystanderTicks = startTicks(t, bystander.Pid)
			}
			old := h.Deployment(d.ID).PID

			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Action != ActionRestart || o.Result != ResultSuccess {
				t.Fatalf("outcome %s, want restart success", o)
			}
			pid := running(t, h, d.ID)
			if pid != o.NewPID || pid == old || o.OldPID != old {
				t.Errorf("row PID %d, outcome %d → %d, old row PID %d", pid, o.OldPID, o.NewPID, old)
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
				t.Errorf("%d starts, want 1", n)
			}
			js := e.journal(t, d.ID)
			if len(js) != 1 || js[0].Action != state.ActionRestart || js[0].Result != state.ResultSuccess ||
				js[0].OldPID != old || js[0].NewPID != pid || js[0].Deployment != "churn" || js[0].Duration <= 0 {
				t.Errorf("journal: %s", describeJournal(js))
			}
			counts, err := e.state.RestartCounts(context.Background())
			if err != nil || counts[d.ID] != 1 {
				t.Errorf("restart count %v (%v), want 1", counts[d.ID], err)
			}
			if bystander != nil {
				if !alive(t, bystander.Pid) || startTicks(t, bystander.Pid) != bystanderTicks {
					t.Errorf("bystander PID %d was touched", bystander.Pid)
				}
			}
			// Counted only once the restart outlives its watch window.
			if got := testutil.ToFloat64(e.metrics.actions.WithLabelValues(string(ActionRestart), string(ResultSuccess))); got != 0 {
				t.Errorf("steam_remediator_actions_total{action=restart,result=success} = %v before the watch window ended, want 0", got)
			}
			if got := testutil.CollectAndCount(e.metrics.restartDuration); got != 1 {
				t.Errorf("restart duration histogram has %d series, want 1", got)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestConcurrentNotifications sends 50 notifications for one deployment at
// once: a dead one is started exactly once, a live one never.
func TestConcurrentNotifications(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		dead       bool
		wantStarts int
	}{
		{name: "dead", dead: true, wantStarts: 1},
		{name: "live", dead: false, wantStarts: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h)
			// Slow enough to be ready that notifications pile up while
			// the first remediation waits for it.
			d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn",
				Behaviour: testkit.Behaviour{ReadyAfter: 200 * time.Millisecond}})
			p := h.Start(d)
			before := h.Deployment(d.ID).PID
			if tc.dead {
				testkit.Kill(t, p)
			}
			if err := e.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() { e.Enqueue(d.ID, AlertDown) })
			}
			wg.Wait()
			e.idle(t)

			if n := testkit.StartsLogged(t, h, d.ID); n != tc.wantStarts {
				t.Errorf("%d starts, want %d", n, tc.wantStarts)
			}
			js := e.journal(t, d.ID)
			if n := countActions(js, state.ActionRestart, ""); n != tc.wantStarts {
				t.Errorf("%d restarts journaled, want %d:%s", n, tc.wantStarts, describeJournal(js))
			}
			pid := running(t, h, d.ID)
			if !tc.dead && pid != before {
				t.Errorf("live deployment's PID changed from %d to %d", before, pid)
			}
		})
	}
}

// TestAdoptsUnknownPID: the deployment's java runs, but the row names
// another PID; the row is corrected and nothing is started.
func TestAdoptsUnknownPID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		rowPID func(t *testing.T) int
	}{
		{name: "dead pid", rowPID: func(t *testing.T) int {
			p := testkit.StartForeign(t, "true")
			testkit.Eventually(t, 5*time.Second, "true to exit", func() bool { return !alive(t, p.Pid) })
			return p.Pid
		}},
		{name: "no pid", rowPID: func(*testing.T) int { return 0 }},
		{name: "pid reused", rowPID: func(t *testing.T) int { return testkit.StartForeign(t).Pid }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h)
			d, p := h.Run(testkit.Spec{Name: "churn"})
			row := tc.rowPID(t)
			if err := h.SetPID(d.ID, row); err != nil {
				t.Fatal(err)
			}
			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Action != ActionAdopt || o.Result != ResultSuccess || o.NewPID != int64(p.Pid) || o.OldPID != int64(row) {
				t.Fatalf("outcome %s %d → %d, want adopt success %d → %d", o, o.OldPID, o.NewPID, row, p.Pid)
			}
			if pid := running(t, h, d.ID); pid != int64(p.Pid) {
				t.Errorf("row PID %d, want %d", pid, p.Pid)
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
				t.Errorf("%d starts, want 0", n)
			}
			if js := e.journal(t, d.ID); len(js) != 1 || js[0].Action != state.ActionAdopt || js[0].NewPID != int64(p.Pid) {
				t.Errorf("journal: %s", describeJournal(js))
			}
			// Adopted once, the next notification finds it running.
			if o, err := e.Remediate(context.Background(), d.ID); err != nil || o.Action != ActionNoop {
				t.Errorf("second remediation: %s, %v; want noop", o, err)
			}
		})
	}
}

// TestPortConflict: something else listens on a dead deployment's port.
// Nothing is started and the listener is not touched.
func TestPortConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// listen takes the port and returns a check that the listener
		// still serves.
		listen func(t *testing.T, h *testkit.Home, port int) func() bool
	}{
		{
			name: "listener in another program",
			listen: func(t *testing.T, h *testkit.Home, port int) func() bool {
				// Another deployment's java, misconfigured onto this port.
				other := h.Add(testkit.Spec{Name: "other", LogicalName: "other", Port: port})
				p := h.Start(other)
				ticks := startTicks(t, p.Pid)
				return func() bool {
					return alive(t, p.Pid) && startTicks(t, p.Pid) == ticks &&
						testkit.WaitReady(context.Background(), port, time.Second) == nil
				}
			},
		},
		{
			name: "listener in this very process",
			listen: func(t *testing.T, _ *testkit.Home, port int) func() bool {
				ln, err := net.Listen("tcp", "127.0.0.1:"+itoa(port))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				return func() bool {
					c, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						return false
					}
					c.Close()
					return true
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h)
			d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
			testkit.Kill(t, p)
			serves := tc.listen(t, h, int(d.Port))

			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Action != ActionPortConflict || o.Result != ResultFailure {
				t.Fatalf("outcome %s, want port_conflict failure", o)
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
				t.Errorf("%d starts, want 0", n)
			}
			if !serves() {
				t.Error("the listener on the port was disturbed")
			}
			if js := e.journal(t, d.ID); len(js) != 1 || js[0].Action != string(ActionPortConflict) {
				t.Errorf("journal: %s", describeJournal(js))
			}
		})
	}
}

// TestNothingToStart covers the deployments that are not started, whatever
// their state, and the misconfigured ones.
func TestNothingToStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		spec       testkit.Spec
		prepare    func(t *testing.T, h *testkit.Home, d steam.Deployment)
		java       string
		wantAction Action
		wantReason string
	}{
		{name: "row deleted", spec: testkit.Spec{Name: "a"},
			prepare: func(t *testing.T, h *testkit.Home, d steam.Deployment) {
				h.Exec(`DELETE FROM service WHERE id = ?`, d.ID)
			}, wantAction: ActionSkip, wantReason: "not_found"},
		{name: "stopped by Steam", spec: testkit.Spec{Name: "a", State: "stopped"},
			wantAction: ActionSkip, wantReason: "not_started: state stopped"},
		{name: "war missing", spec: testkit.Spec{Name: "a", LogicalName: "a", NoWar: true},
			wantAction: ActionMisconfigured, wantReason: steam.ProblemWarMissing},
		{name: "jetty-runner missing", spec: testkit.Spec{Name: "a"},
			prepare: func(t *testing.T, h *testkit.Home, _ steam.Deployment) {
				if err := os.Remove(h.Home.JettyRunner()); err != nil {
					t.Fatal(err)
				}
			}, wantAction: ActionMisconfigured, wantReason: steam.ProblemJettyRunnerMissing},
		{name: "port invalid", spec: testkit.Spec{Name: "a"},
			prepare: func(t *testing.T, h *testkit.Home, d steam.Deployment) {
				h.Exec(`UPDATE service SET port = 70000 WHERE id = ?`, d.ID)
			}, wantAction: ActionMisconfigured, wantReason: steam.ProblemPortInvalid},
		{name: "java missing", spec: testkit.Spec{Name: "a"}, java: "/nonexistent/java",
			wantAction: ActionMisconfigured, wantReason: "java_missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h, func(c *Config) {
				if tc.java != "" {
					c.JavaPath = tc.java
				}
			})
			d := h.Add(tc.spec)
			if tc.prepare != nil {
				tc.prepare(t, h, d)
			}
			plan, err := e.Plan(context.Background(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []Outcome{plan, o} {
				if got.Action != tc.wantAction || !strings.HasPrefix(got.Why(), tc.wantReason) {
					t.Errorf("outcome %s, want %s (%s…)", got, tc.wantAction, tc.wantReason)
				}
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
				t.Errorf("%d starts, want 0", n)
			}
			if js := e.journal(t, d.ID); len(js) != 1 || js[0].Action != string(tc.wantAction) {
				t.Errorf("journal (one entry from Remediate, none from Plan): %s", describeJournal(js))
			}
		})
	}
}

// TestPlanChangesNothing: a dry run says what it would do and does none of
// it.
func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	dead, p := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	testkit.Kill(t, p)
	lost, q := h.Run(testkit.Spec{Name: "lost", LogicalName: "lost"})
	if err := h.SetPID(lost.ID, 0); err != nil {
		t.Fatal(err)
	}
	live, _ := h.Run(testkit.Spec{Name: "live", LogicalName: "live"})

	for _, tc := range []struct {
		d          steam.Deployment
		wantAction Action
		wantResult Result
	}{
		{dead, ActionRestart, ResultPlanned},
		{lost, ActionAdopt, ResultPlanned},
		{live, ActionNoop, ResultSuccess},
	} {
		o, err := e.Plan(context.Background(), tc.d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Action != tc.wantAction || o.Result != tc.wantResult || !o.DryRun {
			t.Errorf("%s: plan %s, want %s %s", tc.d.Name, o, tc.wantAction, tc.wantResult)
		}
		if tc.d.ID == lost.ID && o.NewPID != int64(q.Pid) {
			t.Errorf("plan adopts %d, want %d", o.NewPID, q.Pid)
		}
	}
	if n := testkit.StartsLogged(t, h, dead.ID); n != 0 {
		t.Errorf("%d starts, want 0", n)
	}
	if pid := h.Deployment(lost.ID).PID; pid != 0 {
		t.Errorf("dry run wrote PID %d", pid)
	}
	if js := e.journal(t, 0); len(js) != 0 {
		t.Errorf("dry run journaled: %s", describeJournal(js))
	}
}

// TestFailedStartIsStopped: a start that does not become ready is stopped
// as Steam stops one, and its process is gone.
func TestFailedStartIsStopped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		behaviour testkit.Behaviour
		wrapped   bool
		// What a java says of itself settles before any start timeout; a
		// loaded machine may take longer than 400ms to start one.
		saysSoon   bool
		wantReason string
		wantSignal string
	}{
		{name: "never ready", behaviour: testkit.Behaviour{Mode: "never_ready"},
			wantReason: "not_ready", wantSignal: "stopped with SIGINT"},
		{name: "never ready, deaf to SIGINT", behaviour: testkit.Behaviour{Mode: "never_ready", IgnoreSIGINT: true},
			wantReason: "not_ready", wantSignal: "stopped with SIGKILL"},
		{name: "prints Jetty's failed startup", behaviour: testkit.Behaviour{Mode: "failed"}, saysSoon: true,
			wantReason: "deploy_failed: ", wantSignal: "stopped with SIGINT"},
		// Jetty 9.4 answers 503 for a war it failed to deploy: known at once.
		{name: "unavailable after Started", behaviour: testkit.Behaviour{Mode: "unavailable"}, saysSoon: true,
			wantReason: "not_serving", wantSignal: "stopped with SIGINT"},
		{name: "crashes at start", behaviour: testkit.Behaviour{Mode: "crash_at_start"}, saysSoon: true,
			wantReason: "exited: exit status 1 (java.lang.OutOfMemoryError"},
		// The engine's own child is stopped even when it cannot be
		// recognised as the deployment's java: its command line is the
		// script's, then that of a java not named java.
		{name: "never ready, run through a wrapper script", behaviour: testkit.Behaviour{Mode: "never_ready"},
			wrapped: true, wantReason: "not_ready", wantSignal: "stopped with SIGINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			java := h.Java
			if tc.wrapped {
				java = wrapJava(t, h.Java)
			}
			e := newEngine(t, h, func(c *Config) {
				c.StartTimeout = 400 * time.Millisecond
				if tc.saysSoon {
					c.StartTimeout = 20 * time.Second
				}
				c.JavaPath = java
			})
			d := h.Add(testkit.Spec{Name: "churn", Behaviour: tc.behaviour})

			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Action != ActionRestart || o.Result != ResultFailure || !strings.HasPrefix(o.Why(), tc.wantReason) ||
				!strings.Contains(o.Why(), tc.wantSignal) {
				t.Fatalf("outcome %s, want restart failure (%s… %s)", o, tc.wantReason, tc.wantSignal)
			}
			if o.NewPID == 0 || alive(t, int(o.NewPID)) {
				t.Errorf("started process %d still runs", o.NewPID)
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
				t.Errorf("%d starts, want 1", n)
			}
			if pid := h.Deployment(d.ID).PID; pid != 0 {
				t.Errorf("row PID %d recorded for a failed start", pid)
			}
			pol, err := e.state.RestartPolicy(context.Background(), d.ID)
			if err != nil || pol.ConsecutiveFailures != 1 || pol.NextStart.IsZero() {
				t.Errorf("policy %+v (%v), want one failure and a backoff", pol, err)
			}
		})
	}
}

// wrapJava returns a script that runs java as a wrapper would: its process
// never has a command line the deployment is recognised by, first the
// shell's, then (after exec) that of java under another name. Whatever
// still runs it when the test ends is killed.
func wrapJava(t *testing.T, java string) string {
	t.Helper()
	dir := t.TempDir()
	real := filepath.Join(dir, "jvm-real")
	if err := os.Symlink(java, real); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "java-wrapper")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec "+real+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ms, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, m := range ms {
			if b, err := os.ReadFile(m); err == nil && bytes.Contains(b, []byte(dir)) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(m)))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return script
}

// TestCrashAtStartGivesUp: a deployment that cannot start is started
// exactly MaxFailures times, then never again, also by a new remediator on
// the same state, until an operator resets it.
func TestCrashAtStartGivesUp(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})
	e := newEngine(t, h)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	// The engine retries by itself after each backoff.
	testkit.Eventually(t, 20*time.Second, "giving up", func() bool {
		return countActions(e.journal(t, d.ID), state.ActionGiveUp, "") == 1
	})
	// Alertmanager keeps notifying: nothing more is started.
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		e.Enqueue(d.ID, AlertDown)
		time.Sleep(20 * time.Millisecond)
	}
	e.idle(t)
	if n := testkit.StartsLogged(t, h, d.ID); n != DefaultMaxFailures {
		t.Fatalf("%d starts, want %d:%s", n, DefaultMaxFailures, describeJournal(e.journal(t, d.ID)))
	}
	js := e.journal(t, d.ID)
	if n := countActions(js, state.ActionRestart, state.ResultFailure); n != DefaultMaxFailures {
		t.Errorf("%d failed restarts journaled, want %d", n, DefaultMaxFailures)
	}
	if js[len(js)-1].Action != state.ActionSkip || !strings.HasPrefix(entryWhy(js[len(js)-1]), "gave_up") {
		t.Errorf("last journal entry %+v, want a skip because it gave up", js[len(js)-1])
	}
	gaveUp := func(e *testEngine, want string) {
		t.Helper()
		expected := "# HELP steam_remediator_deployment_gave_up 1 if the restart policy gave the deployment up: it is not started again until the window passes or an operator resets it.\n" +
			"# TYPE steam_remediator_deployment_gave_up gauge\n" +
			"steam_remediator_deployment_gave_up{deployment_id=\"" + itoa(int(d.ID)) + "\"} " + want + "\n"
		if err := testutil.GatherAndCompare(e.reg, strings.NewReader(expected), "steam_remediator_deployment_gave_up"); err != nil {
			t.Error(err)
		}
	}
	gaveUp(e, "1")
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A new remediator remembers.
	e2 := newEngine(t, h)
	if err := e2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e2.Enqueue(d.ID, AlertDown)
	e2.idle(t)
	gaveUp(e2, "1")
	if n := testkit.StartsLogged(t, h, d.ID); n != DefaultMaxFailures {
		t.Fatalf("after a remediator restart: %d starts, want %d", n, DefaultMaxFailures)
	}

	// An operator resets it: it is started again.
	if err := e2.Reset(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	gaveUp(e2, "0")
	e2.Enqueue(d.ID, AlertDown)
	testkit.Eventually(t, 10*time.Second, "a start after the reset", func() bool {
		return testkit.StartsLogged(t, h, d.ID) > DefaultMaxFailures
	})
	js = e2.journal(t, d.ID)
	if countActions(js, state.ActionReset, state.ResultSuccess) != 1 {
		t.Errorf("reset not journaled:%s", describeJournal(js))
	}
	problems, err := testutil.GatherAndLint(e2.reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestGivenUpThenRunningAgain: an operator mends a given-up deployment and
// starts it himself. The next look finds it running, and the give-up, with
// its alert, is lifted.
func TestGivenUpThenRunningAgain(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn", Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})
	e := newEngine(t, h)
	for range DefaultMaxFailures {
		if _, err := e.Remediate(context.Background(), d.ID); err != nil {
			t.Fatal(err)
		}
		// Step over the backoff: the test config's is milliseconds.
		time.Sleep(100 * time.Millisecond)
	}
	pol, err := e.state.RestartPolicy(context.Background(), d.ID)
	if err != nil || !pol.GaveUp(time.Now()) {
		t.Fatalf("policy %+v (%v), want given up after %d failed starts", pol, err, DefaultMaxFailures)
	}

	// The operator fixes the war and starts the deployment, as Steam would.
	if err := h.WriteWar(d.ModelID, "churn.war", testkit.Behaviour{}); err != nil {
		t.Fatal(err)
	}
	p := h.Start(d)

	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionNoop {
		t.Fatalf("outcome %s (%v), want noop", o, err)
	}
	if pol, err := e.state.RestartPolicy(context.Background(), d.ID); err != nil || pol.GaveUp(time.Now()) {
		t.Errorf("policy %+v (%v), want the give-up lifted", pol, err)
	}
	// The reset, then the noop that led to it.
	js := e.journal(t, d.ID)
	if n := len(js); n < 2 || js[n-1].Action != state.ActionNoop || js[n-2].Action != state.ActionReset ||
		!strings.HasPrefix(entryWhy(js[n-2]), "running_again") {
		t.Errorf("want a reset because it runs again, then a noop:%s", describeJournal(js))
	}
	expected := "# HELP steam_remediator_deployment_gave_up 1 if the restart policy gave the deployment up: it is not started again until the window passes or an operator resets it.\n" +
		"# TYPE steam_remediator_deployment_gave_up gauge\n" +
		"steam_remediator_deployment_gave_up{deployment_id=\"" + itoa(int(d.ID)) + "\"} 0\n"
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(expected), "steam_remediator_deployment_gave_up"); err != nil {
		t.Error(err)
	}
	if got := running(t, h, d.ID); got != int64(p.Pid) {
		t.Errorf("running PID %d, want the operator's %d untouched", got, p.Pid)
	}
}

// TestCrashAfterReady: a start whose process dies within the watch window
// counts as failed; one that lives through it wipes the failures.
func TestCrashAfterReady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		crashAfter   time.Duration
		watch        time.Duration
		steamStops   bool // Steam stops the deployment before it dies
		wantFailures int
	}{
		// Wide margins: the engine must see the process ready before it
		// crashes, and the window must close well before the crash, on a
		// loaded machine too.
		{name: "dies within the window", crashAfter: 2 * time.Second, watch: time.Hour, wantFailures: 1},
		{name: "dies after the window", crashAfter: 4 * time.Second, watch: 100 * time.Millisecond, wantFailures: 0},
		// A process Steam stopped did not fail to start.
		{name: "stopped by Steam within the window", crashAfter: 2 * time.Second, watch: time.Hour, steamStops: true, wantFailures: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			e := newEngine(t, h, func(c *Config) {
				c.WatchAfterReady = tc.watch
				c.Policy.InitialBackoff = time.Hour // no retry during the test
			})
			d := h.Add(testkit.Spec{Name: "churn",
				Behaviour: testkit.Behaviour{Mode: "crash_after_ready", CrashAfter: tc.crashAfter}})
			// A failure before, so that a successful window has
			// something to wipe.
			if err := e.state.SaveRestartPolicy(context.Background(), state.RestartPolicy{DeploymentID: d.ID, ConsecutiveFailures: 1}); err != nil {
				t.Fatal(err)
			}
			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
				t.Fatalf("outcome %s (%v), want restart success", o, err)
			}
			if tc.steamStops {
				h.Exec(`UPDATE service SET state = 'stopped' WHERE id = ?`, d.ID)
			}
			testkit.Eventually(t, 10*time.Second, "the process to crash", func() bool { return !alive(t, int(o.NewPID)) })
			var pol state.RestartPolicy
			testkit.Eventually(t, 10*time.Second, "the watch window to close", func() bool {
				pol, err = e.state.RestartPolicy(context.Background(), d.ID)
				// The policy is saved, then the failure journaled.
				return err == nil && pol.ProbationPID == 0 &&
					countActions(e.journal(t, d.ID), state.ActionFailure, "") >= tc.wantFailures
			})
			want := tc.wantFailures
			if want > 0 {
				want++ // the one before
			}
			if pol.ConsecutiveFailures != want {
				t.Errorf("%d consecutive failures, want %d", pol.ConsecutiveFailures, want)
			}
			js := e.journal(t, d.ID)
			if n := countActions(js, state.ActionFailure, state.ResultFailure); n != tc.wantFailures {
				t.Errorf("%d failures journaled, want %d:%s", n, tc.wantFailures, describeJournal(js))
			}
		})
	}
}

// TestSteamDatabaseLocked: Steam holds its write lock for 3 s while the
// restarted deployment becomes ready; the PID lands once it lets go.
func TestSteamDatabaseLocked(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	d, p := h.Run(testkit.Spec{Name: "churn"})
	testkit.Kill(t, p)

	lock := h.HoldLock(testkit.Immediate)
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(3 * time.Second)
		if err := lock.Commit(); err != nil {
			t.Error(err)
		}
	}()
	o, err := e.Remediate(context.Background(), d.ID)
	<-released
	if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
		t.Fatalf("outcome %s (%v), want restart success", o, err)
	}
	if pid := running(t, h, d.ID); pid != o.NewPID {
		t.Errorf("row PID %d, want %d", pid, o.NewPID)
	}
}

// TestRowChangesBeforeRecording: Steam stops the deployment while it is
// being restarted. The new java is stopped (no process may hold the port of
// a deployment Steam does not run) and nothing is written to the row.
func TestRowChangesBeforeRecording(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) { c.RecordTimeout = time.Hour })
	d := h.Add(testkit.Spec{Name: "churn"})
	// Steam's write lock, taken before the remediation, keeps the PID
	// from landing until Steam has stopped the deployment, whenever the
	// new process becomes ready; Steam stops it once the start is under
	// way, as the header in the deployment's log shows.
	lock := h.HoldLock(testkit.Immediate)
	log := filepath.Join(h.Home.LogDir(), "deployment-"+itoa(int(d.ID))+".log")
	remediated := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("steam-overseer remediator: starting deployment")) {
				break
			}
			select {
			case <-remediated:
				t.Error("the remediation ended without starting the deployment")
				_ = lock.Release()
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		if err := lock.Exec(`UPDATE service SET state = 'stopped', process_id = 1 WHERE id = ?`, d.ID); err != nil {
			t.Error(err)
		}
		if err := lock.Commit(); err != nil {
			t.Error(err)
		}
	}()
	o, err := e.Remediate(context.Background(), d.ID)
	close(remediated)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	// Steam no longer wants it: the new java must not hold the port.
	if o.Action != ActionCancelled || o.Reason != ReasonRowStopped || o.NewPID == 0 {
		t.Fatalf("outcome %s, want cancelled (row_stopped)", o)
	}
	testkit.Eventually(t, 10*time.Second, "the cancelled start to be gone", func() bool { return !alive(t, int(o.NewPID)) })
	if d := h.Deployment(d.ID); d.PID != 1 || d.State != "stopped" {
		t.Errorf("row PID %d, state %s; want Steam's 1 and stopped left alone", d.PID, d.State)
	}
}

// TestShutdownAbandonsSafely: shutting down while a start waits for
// readiness leaves the process running; the next remediator adopts it.
func TestShutdownAbandonsSafely(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{ReadyAfter: 800 * time.Millisecond}})
	e := newEngine(t, h)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	testkit.Eventually(t, 5*time.Second, "the start", func() bool { return testkit.StartsLogged(t, h, d.ID) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Shutdown(ctx); err == nil {
		t.Error("Shutdown returned nil, want the context's error for an abandoned remediation")
	}
	e.Enqueue(d.ID, AlertDown) // ignored
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts after shutdown, want 1", n)
	}

	e2 := newEngine(t, h)
	o, err := e2.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionAdopt {
		t.Fatalf("outcome %s (%v), want adopt", o, err)
	}
	running(t, h, d.ID)
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}

// TestJavaOptions: --java.opts are passed as separate arguments, no shell,
// and the started process is still recognised as the deployment's.
func TestJavaOptions(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) { c.JavaOpts = []string{"-Xmx64m", "-Dsteam.note=$(touch /tmp/x)"} })
	d := h.Add(testkit.Spec{Name: "churn"})
	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
		t.Fatalf("outcome %s (%v), want restart success", o, err)
	}
	b, err := os.ReadFile("/proc/" + itoa(int(o.NewPID)) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	want := []string{"java", "-Xmx64m", "-Dsteam.note=$(touch /tmp/x)", "-jar", h.Home.JettyRunner(), "--port", itoa(int(d.Port)), d.War}
	if strings.Join(argv, "|") != strings.Join(want, "|") {
		t.Errorf("argv %q, want %q", argv, want)
	}
	if _, err := New(Config{Home: h.Home, State: e.state, JavaOpts: []string{"Xmx64m"}}, nil, nil); err == nil {
		t.Error("New accepted a java option without a leading dash")
	}
}

// helperEnv marks the test binary re-executed as a remediator process.
const helperEnv = "REMEDIATE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helper starts the test binary as another remediator process on h.
func helper(t *testing.T, h *testkit.Home, mode string, id int64) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "STEAM_HOME="+h.Home.Dir, "HELPER_JAVA="+h.Java,
		"HELPER_DEPLOYMENT="+itoa(int(id)))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestTwoRemediatorProcesses: two remediator processes on one Steam home,
// both notified 25 times at once about a dead deployment, start it once.
func TestTwoRemediatorProcesses(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{ReadyAfter: 500 * time.Millisecond}})
	testkit.Kill(t, p)
	a, b := helper(t, h, "enqueue", d.ID), helper(t, h, "enqueue", d.ID)
	for _, cmd := range []*exec.Cmd{a, b} {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("remediator process: %v", err)
		}
	}
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	js := readJournal(t, st, d.ID)
	if n := countActions(js, state.ActionRestart, state.ResultSuccess); n != 1 {
		t.Errorf("%d restarts journaled, want 1:%s", n, describeJournal(js))
	}
	running(t, h, d.ID)
}

// TestRemediatorKilledAfterStart: the remediator is SIGKILLed right after
// starting a java; the next one adopts it instead of starting a second.
func TestRemediatorKilledAfterStart(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{ReadyAfter: time.Second}})
	cmd := helper(t, h, "remediate", d.ID)
	testkit.Eventually(t, 10*time.Second, "the start", func() bool { return testkit.StartsLogged(t, h, d.ID) == 1 })
	identity, _ := d.Identity()
	testkit.Eventually(t, 5*time.Second, "the java", func() bool {
		found, _ := inspector(t).Find(identity)
		return len(found) == 1
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	e := newEngine(t, h)
	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionAdopt || o.Result != ResultSuccess {
		t.Fatalf("outcome %s (%v), want adopt success", o, err)
	}
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	running(t, h, d.ID)
}

// helperMain is a remediator process for the tests above: "enqueue" runs the
// workers and notifies them 25 times at once; "remediate" remediates once.
func helperMain(mode string) int {
	home, err := steam.NewHome("")
	if err != nil {
		return fail(err)
	}
	id, err := strconv.ParseInt(os.Getenv("HELPER_DEPLOYMENT"), 10, 64)
	if err != nil {
		return fail(err)
	}
	st, err := state.Open(context.Background(), home.StatePath())
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	cfg := Config{Home: home, State: st, JavaPath: os.Getenv("HELPER_JAVA"), StartTimeout: 10 * time.Second}
	e, err := New(cfg, nil, nil)
	if err != nil {
		return fail(err)
	}
	switch mode {
	case "enqueue":
		if err := e.Start(context.Background()); err != nil {
			return fail(err)
		}
		var wg sync.WaitGroup
		for range 25 {
			wg.Go(func() { e.Enqueue(id, AlertDown) })
		}
		wg.Wait()
		for {
			e.mu.Lock()
			n := len(e.jobs)
			e.mu.Unlock()
			if n == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	case "remediate":
		if _, err := e.Remediate(context.Background(), id); err != nil {
			return fail(err)
		}
	}
	if err := e.Shutdown(context.Background()); err != nil {
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	os.Stderr.WriteString("remediator helper: " + err.Error() + "\n")
	return 1
}

// TestSweep remediates every deployment at once, as reconcile does; a dry
// run first changes nothing.
func TestSweep(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	dead, p := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	testkit.Kill(t, p)
	lost, q := h.Run(testkit.Spec{Name: "lost", LogicalName: "lost"})
	if err := h.SetPID(lost.ID, 0); err != nil {
		t.Fatal(err)
	}
	h.Run(testkit.Spec{Name: "live", LogicalName: "live"})
	h.Add(testkit.Spec{Name: "stopped", State: "stopped"})

	for _, tc := range []struct {
		dryRun bool
		want   []string
	}{
		{true, []string{"restart planned", "adopt planned", "noop success", "skip success"}},
		{false, []string{"restart success", "adopt success", "noop success", "skip success"}},
		{false, []string{"noop success", "noop success", "noop success", "skip success"}},
	} {
		outcomes, err := e.Sweep(context.Background(), tc.dryRun)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range outcomes {
			got = append(got, string(o.Action)+" "+string(o.Result))
		}
		if strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
			t.Errorf("sweep (dry run %v): %q, want %q", tc.dryRun, got, tc.want)
		}
	}
	if n := testkit.StartsLogged(t, h, dead.ID); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	// The journal holds what was done, not the sweeps' noops and skips.
	var actions []string
	for _, entry := range e.journal(t, 0) {
		actions = append(actions, entry.Deployment+" "+entry.Action)
	}
	if strings.Join(actions, ", ") != "dead restart, lost adopt" && strings.Join(actions, ", ") != "lost adopt, dead restart" {
		t.Errorf("journal %q, want the restart and the adoption only", actions)
	}
	running(t, h, dead.ID)
	if pid := running(t, h, lost.ID); pid != int64(q.Pid) {
		t.Errorf("lost deployment's row PID %d, want %d", pid, q.Pid)
	}
}

// shutdown calls e.Shutdown with ctx and fails the test if it has not
// returned after a bound far beyond anything the test's engine should need
// (a guard against a hang, not a measure of speed).
func shutdown(t *testing.T, e *testEngine, ctx context.Context) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("Shutdown did not return")
		return nil
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestShutdownKillsFailedStart: shutting down while a failed start is being
// stopped (one deaf to SIGINT, with an hour before SIGKILL) does not wait
// out the stop: the process gets SIGKILL at once, and is not left behind
// for the next remediation to adopt.
func TestShutdownKillsFailedStart(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) {
		c.StartTimeout = 300 * time.Millisecond
		c.StopTimeout = time.Hour
	})
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{Mode: "never_ready", IgnoreSIGINT: true}})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	e.waitLogged(t, "Start failed; stopping its process")
	if err := shutdown(t, e, cancelled()); err == nil {
		t.Error("Shutdown returned nil, want the context's error for an abandoned remediation")
	}
	js := e.journal(t, d.ID)
	if len(js) != 1 || js[0].Action != state.ActionRestart || !strings.Contains(entryWhy(js[0]), "stopped with SIGKILL") {
		t.Fatalf("journal: %s; want a failed restart stopped with SIGKILL", describeJournal(js))
	}
	testkit.Eventually(t, 10*time.Second, "the failed start to be gone", func() bool { return !alive(t, int(js[0].NewPID)) })
}

// TestShutdownAbandonsRecording: shutting down while Steam's lock keeps the
// new PID from landing does not wait out RecordTimeout: the process keeps
// serving, the row is untouched, and the next remediation adopts it.
func TestShutdownAbandonsRecording(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) { c.RecordTimeout = time.Hour })
	d, p := h.Run(testkit.Spec{Name: "churn"})
	testkit.Kill(t, p)
	lock := h.HoldLock(testkit.Immediate)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Enqueue(d.ID, AlertDown)
	e.waitLogged(t, "Deployment serves; recording its PID")
	if err := shutdown(t, e, cancelled()); err == nil {
		t.Error("Shutdown returned nil, want the context's error for an abandoned remediation")
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}
	js := e.journal(t, d.ID)
	if len(js) != 1 || js[0].Action != state.ActionRestart || !strings.HasPrefix(entryWhy(js[0]), "pid_not_recorded") {
		t.Fatalf("journal: %s; want a restart whose PID was not recorded", describeJournal(js))
	}
	if pid := h.Deployment(d.ID).PID; pid != int64(p.Pid) {
		t.Errorf("row PID %d, want the old %d untouched", pid, p.Pid)
	}

	e2 := newEngine(t, h)
	o, err := e2.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionAdopt || o.NewPID != js[0].NewPID {
		t.Fatalf("outcome %s (%v), want adoption of PID %d", o, err, js[0].NewPID)
	}
	running(t, h, d.ID)
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}

// TestPeriodicReconcile: with ReconcileInterval, Start sweeps by itself; a
// Shutdown during the sweep's start lets it finish within its grace
// instead of abandoning it, and returns only once it has.
func TestPeriodicReconcile(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{ReadyAfter: time.Second}})
	e := newEngine(t, h, func(c *Config) { c.ReconcileInterval = time.Hour })
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the sweep to start the deployment", func() bool { return testkit.StartsLogged(t, h, d.ID) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shutdown(t, e, ctx); err != nil {
		t.Fatalf("Shutdown: %v, want the sweep's start finished within the grace", err)
	}
	js := e.journal(t, d.ID)
	if len(js) != 1 || js[0].Action != state.ActionRestart || js[0].Result != state.ResultSuccess {
		t.Fatalf("journal: %s; want one successful restart", describeJournal(js))
	}
	if pid := running(t, h, d.ID); pid != js[0].NewPID {
		t.Errorf("row PID %d, want %d", pid, js[0].NewPID)
	}
}

// TestSweepStopsWhenContextEnds: a sweep whose context ends begins no more
// remediations; the deployments left are neither touched nor journaled.
func TestSweepStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h, func(c *Config) {
		c.Concurrency = 1
		c.StartTimeout = time.Hour
	})
	// Ready long after the test is over: the first start is still
	// waiting for readiness when the context ends.
	var ds []steam.Deployment
	for _, name := range []string{"a", "b", "c"} {
		ds = append(ds, h.Add(testkit.Spec{Name: name, LogicalName: name,
			Behaviour: testkit.Behaviour{ReadyAfter: time.Hour}}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		outcomes []Outcome
		err      error
	}
	done := make(chan result, 1)
	go func() {
		outcomes, err := e.Sweep(ctx, false)
		done <- result{outcomes, err}
	}()
	testkit.Eventually(t, 20*time.Second, "the first start", func() bool { return testkit.StartsLogged(t, h, ds[0].ID) == 1 })
	cancel()
	r := <-done
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Sweep: %v, want context.Canceled", r.err)
	}
	if len(r.outcomes) != 3 {
		t.Fatalf("%d outcomes, want 3", len(r.outcomes))
	}
	for i, d := range ds[1:] {
		if o := r.outcomes[i+1]; o.DeploymentID != d.ID || o.Action != ActionError || !strings.HasPrefix(o.Why(), "not_remediated") || !o.Down() {
			t.Errorf("outcome %s, want %s not remediated", o, d.Name)
		}
		if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
			t.Errorf("%s: %d starts, want 0", d.Name, n)
		}
		if js := e.journal(t, d.ID); len(js) != 0 {
			t.Errorf("%s journaled:%s", d.Name, describeJournal(js))
		}
	}
}

// TestGaveUpMetricFollowsSteam: steam_remediator_deployment_gave_up has a
// series for the deployments in Steam's registry only, not for the policy
// rows of deleted ones.
func TestGaveUpMetricFollowsSteam(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	e := newEngine(t, h)
	kept := h.Add(testkit.Spec{Name: "kept"})
	deleted := h.Add(testkit.Spec{Name: "deleted"})
	for _, id := range []int64{kept.ID, deleted.ID, 999} {
		if err := e.state.SaveRestartPolicy(context.Background(), state.RestartPolicy{DeploymentID: id, ConsecutiveFailures: 5,
			GaveUpUntil: time.Now().Add(time.Hour), GaveUpReason: "5 consecutive failed starts"}); err != nil {
			t.Fatal(err)
		}
	}
	h.Exec(`DELETE FROM service WHERE id = ?`, deleted.ID)
	expected := "# HELP steam_remediator_deployment_gave_up 1 if the restart policy gave the deployment up: it is not started again until the window passes or an operator resets it.\n" +
		"# TYPE steam_remediator_deployment_gave_up gauge\n" +
		"steam_remediator_deployment_gave_up{deployment_id=\"" + itoa(int(kept.ID)) + "\"} 1\n"
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(expected), "steam_remediator_deployment_gave_up"); err != nil {
		t.Error(err)
	}
}
