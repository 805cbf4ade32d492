package procid_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

func inspector(t *testing.T) *procid.Inspector {
	t.Helper()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func identity(t *testing.T, d steam.Deployment) procid.Identity {
	t.Helper()
	id, ok := d.Identity()
	if !ok {
		t.Fatalf("deployment %s has no identity (problem %q)", d.Name, d.Problem)
	}
	return id
}

// waitExec waits until cmd's process shows cmd's command line. Start
// returns once the exec has begun, a moment before the kernel sets up the
// new program's arguments; /proc/<pid>/cmdline may be empty until then.
func waitExec(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	want := strings.Join(cmd.Args, "\x00") + "\x00"
	testkit.Eventually(t, 10*time.Second, "the command line of "+cmd.Args[0], func() bool {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "cmdline"))
		return err == nil && string(b) == want
	})
}

// startZombie starts d (whose war makes it exit at once) with Steam's argv
// and does not wait for it, so it stays a zombie until the test ends.
func startZombie(t *testing.T, h *testkit.Home, d steam.Deployment) int {
	t.Helper()
	cmd := h.Command(h.Java, d)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	pid := cmd.Process.Pid
	testkit.Eventually(t, 10*time.Second, "child to become a zombie", func() bool {
		return procState(pid) == "Z"
	})
	return pid
}

// procState reads the state field of /proc/<pid>/stat directly, without the
// code under test.
func procState(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	_, after, _ := strings.Cut(string(b), ") ")
	state, _, _ := strings.Cut(after, " ")
	return state
}

func TestInspect(t *testing.T) {
	h := testkit.NewHome(t)
	begin := time.Now()
	a, procA := h.Run(testkit.Spec{Name: "a", LogicalName: "a"})
	_, procB := h.Run(testkit.Spec{Name: "b", LogicalName: "b"})
	idA := identity(t, a)
	in := inspector(t)

	for _, tc := range []struct {
		name string
		// pid returns the PID to inspect and the identity to check it against.
		pid  func(t *testing.T) (int, procid.Identity)
		want procid.Status
	}{
		{name: "running", pid: func(*testing.T) (int, procid.Identity) { return procA.Pid, idA }, want: procid.StatusRunning},
		{name: "running with python war", pid: func(t *testing.T) (int, procid.Identity) {
			d, p := h.Run(testkit.Spec{Name: "py", LogicalName: "py", PyWar: true})
			return p.Pid, identity(t, d)
		}, want: procid.StatusRunning},
		{name: "dead (killed and reaped)", pid: func(t *testing.T) (int, procid.Identity) {
			d, p := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
			testkit.Kill(t, p)
			return p.Pid, identity(t, d)
		}, want: procid.StatusDead},
		{name: "zombie", pid: func(t *testing.T) (int, procid.Identity) {
			d := h.Add(testkit.Spec{Name: "zombie", LogicalName: "zombie",
				Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})
			return startZombie(t, h, d), identity(t, d)
		}, want: procid.StatusZombie},
		{name: "pid reused by sleep", pid: func(t *testing.T) (int, procid.Identity) {
			return testkit.StartForeign(t).Pid, idA
		}, want: procid.StatusPIDReused},
		{name: "pid reused by another deployment's java", pid: func(*testing.T) (int, procid.Identity) {
			return procB.Pid, idA
		}, want: procid.StatusPIDReused},
		{name: "pid reused by a kernel thread", pid: func(*testing.T) (int, procid.Identity) {
			return 2, idA // kthreadd: no command line at all
		}, want: procid.StatusPIDReused},
		{name: "unverifiable identity", pid: func(*testing.T) (int, procid.Identity) {
			return procA.Pid, procid.Identity{}
		}, want: procid.StatusPIDReused},
		{name: "no such pid", pid: func(*testing.T) (int, procid.Identity) { return 1 << 30, idA }, want: procid.StatusDead},
		{name: "no pid", pid: func(*testing.T) (int, procid.Identity) { return 0, idA }, want: procid.StatusNoPID},
		{name: "negative pid", pid: func(*testing.T) (int, procid.Identity) { return -1, idA }, want: procid.StatusNoPID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, id := tc.pid(t)
			p := in.Inspect(pid, id)
			if p.Status != tc.want || p.PID != pid || p.Err != nil {
				t.Fatalf("Inspect(%d) = %+v, want status %s", pid, p, tc.want)
			}
			if tc.want != procid.StatusRunning {
				if p.UserCPUSeconds != 0 || p.SystemCPUSeconds != 0 || p.ResidentBytes != 0 || p.VirtualBytes != 0 || p.StartTime != 0 || p.CreateTime != 0 {
					t.Errorf("a process not verified as the deployment's was measured: %+v", p)
				}
				return
			}
			if p.UserCPUSeconds < 0 || p.SystemCPUSeconds < 0 || p.ResidentBytes == 0 || p.VirtualBytes < p.ResidentBytes || p.CreateTime == 0 {
				t.Errorf("implausible resources: %+v", p)
			}
			// Started during this test; gopsutil's create time has a
			// one-second resolution.
			if start := time.Unix(0, int64(p.StartTime*1e9)); start.Before(begin.Add(-2*time.Second)) || start.After(time.Now().Add(2*time.Second)) {
				t.Errorf("start time %s, but the process was started after %s", start, begin)
			}
		})
	}

	t.Run("same process, same start", func(t *testing.T) {
		first, second := in.Inspect(procA.Pid, idA), in.Inspect(procA.Pid, idA)
		if first.CreateTime != second.CreateTime || first.StartTime != second.StartTime {
			t.Errorf("start changed between two looks: %+v, %+v", first, second)
		}
	})
}

// TestInspectSymlinkedHome runs deployments of a Steam home that is also
// reached through a symbolic link (/opt/steam -> steam-1.1.6): Steam may
// start java with either spelling, and --steam.home may name either.
func TestInspectSymlinkedHome(t *testing.T) {
	h := testkit.NewHome(t)
	link := filepath.Join(t.TempDir(), "steam")
	if err := os.Symlink(h.Home.Dir, link); err != nil {
		t.Fatal(err)
	}
	viaLink, err := steam.NewHome(link)
	if err != nil {
		t.Fatal(err)
	}
	if viaLink.Dir == h.Home.Dir {
		t.Fatalf("NewHome resolved the link to %s: the test needs two spellings", viaLink.Dir)
	}
	ctx := context.Background()
	deployment := func(home steam.Home, id int64) steam.Deployment {
		t.Helper()
		d, err := steam.NewRegistry(home).Deployment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// startAs starts d with Steam's argv spelled under home; relative paths
	// from inside home when relative is set.
	startAs := func(d steam.Deployment, home steam.Home, relative bool) int {
		t.Helper()
		d = deployment(home, d.ID)
		runner, war := home.JettyRunner(), d.War
		cmd := exec.Command(h.Java, "-jar", runner, "--port", strconv.FormatInt(d.Port, 10), war)
		if relative {
			cmd.Dir = home.Dir
			cmd.Args[2], _ = filepath.Rel(home.Dir, runner)
			cmd.Args[5], _ = filepath.Rel(home.Dir, war)
		}
		cmd.Args[0] = "java"
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testkit.Reap(t, cmd)
		waitExec(t, cmd)
		return cmd.Process.Pid
	}
	realArgv, _ := h.Run(testkit.Spec{Name: "real", LogicalName: "real"})
	linkArgv := h.Add(testkit.Spec{Name: "link", LogicalName: "link"})
	relArgv := h.Add(testkit.Spec{Name: "relative", LogicalName: "relative"})
	pids := map[int64]int{
		realArgv.ID: int(realArgv.PID),
		linkArgv.ID: startAs(linkArgv, viaLink, false),
		relArgv.ID:  startAs(relArgv, viaLink, true),
	}
	// Another home with the same layout: its first model is model 1 too,
	// and its deployment has the same logical name and port.
	other := testkit.NewHome(t)
	lookalike := other.Add(testkit.Spec{Name: "real", LogicalName: "real", Port: int(realArgv.Port)})

	in := inspector(t)
	for _, tc := range []struct {
		name string
		d    steam.Deployment // read through the registry of one spelling
		pid  int
		want procid.Status
	}{
		{name: "argv real, registry through the link", d: deployment(viaLink, realArgv.ID), pid: pids[realArgv.ID], want: procid.StatusRunning},
		{name: "argv through the link, registry real", d: deployment(h.Home, linkArgv.ID), pid: pids[linkArgv.ID], want: procid.StatusRunning},
		{name: "argv through the link, registry through the link", d: deployment(viaLink, linkArgv.ID), pid: pids[linkArgv.ID], want: procid.StatusRunning},
		{name: "relative argv from the link, registry real", d: deployment(h.Home, relArgv.ID), pid: pids[relArgv.ID], want: procid.StatusRunning},
		{name: "relative argv from the link, registry through the link", d: deployment(viaLink, relArgv.ID), pid: pids[relArgv.ID], want: procid.StatusRunning},
		{name: "another deployment of the home through the link", d: deployment(viaLink, linkArgv.ID), pid: pids[realArgv.ID], want: procid.StatusPIDReused},
		{name: "another home with the same layout", d: lookalike, pid: pids[realArgv.ID], want: procid.StatusPIDReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := identity(t, tc.d)
			if p := in.Inspect(tc.pid, id); p.Status != tc.want {
				t.Errorf("Inspect(%d) = %+v, want %s", tc.pid, p, tc.want)
			}
			foundPIDs := findPIDs(t, in, id)
			if want := slices.Contains(foundPIDs, tc.pid); want != (tc.want == procid.StatusRunning) {
				t.Errorf("Find = %v, contains %d: %v, want %v", foundPIDs, tc.pid, want, tc.want == procid.StatusRunning)
			}
		})
	}
}

// TestInspectProcFixture reads testdata/proc, a procfs tree holding what a
// live process cannot make deterministic (CPU ticks, pages, start times) or
// is hard to produce on demand (a malformed stat, a process gone between
// two reads).
func TestInspectProcFixture(t *testing.T) {
	in, err := procid.NewInspector(filepath.Join(testkit.RepoRoot(), "testdata", "proc"))
	if err != nil {
		t.Fatal(err)
	}
	id := procid.Identity{JettyRunner: "/opt/steam/var/master/assets/jetty-runner.jar", Port: 8080,
		Wars: []string{"/opt/steam/var/master/model/3/churn.war"}}
	// Every running fixture has utime 250 and stime 50 ticks, 2560 resident
	// and 262144 virtual pages, and starts 12345 ticks after boot unless
	// startDelay says otherwise.
	page := uint64(os.Getpagesize())
	base := in.Inspect(4242, id)
	for _, tc := range []struct {
		name       string
		pid        int
		want       procid.Status
		startDelay int64 // ms after 4242's start
	}{
		{name: "running", pid: 4242, want: procid.StatusRunning},
		{name: "started later", pid: 4247, want: procid.StatusRunning, startDelay: 100_000},
		{name: "command name with parentheses", pid: 4248, want: procid.StatusRunning},
		{name: "long command line", pid: 4249, want: procid.StatusRunning},
		{name: "relative paths from its cwd", pid: 4250, want: procid.StatusRunning},
		{name: "zombie", pid: 4243, want: procid.StatusZombie},
		{name: "pid reused by sleep", pid: 4244, want: procid.StatusPIDReused},
		{name: "pid reused by another deployment", pid: 4246, want: procid.StatusPIDReused},
		{name: "kernel thread", pid: 2, want: procid.StatusPIDReused},
		{name: "gone after its command line was read", pid: 4251, want: procid.StatusDead},
		{name: "missing", pid: 4299, want: procid.StatusDead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := in.Inspect(tc.pid, id)
			want := procid.Process{PID: tc.pid, Status: tc.want}
			if tc.want == procid.StatusRunning {
				want.UserCPUSeconds, want.SystemCPUSeconds = 2.5, 0.5
				want.ResidentBytes, want.VirtualBytes = 2560*page, 262144*page
				want.CreateTime = base.CreateTime + tc.startDelay
				want.StartTime = float64(want.CreateTime) / 1e3
				want.UID = 1001 // the effective one of status's Uid line
			}
			if got != want {
				t.Errorf("Inspect(%d) = %+v, want %+v", tc.pid, got, want)
			}
		})
	}
	t.Run("unreadable stat", func(t *testing.T) {
		got := in.Inspect(4245, id)
		if got.Status != procid.StatusUnknown || got.Err == nil || !strings.Contains(got.Err.Error(), "4245") {
			t.Errorf("Inspect of a malformed stat = %+v, want unknown with an error naming the PID", got)
		}
	})
	t.Run("find", func(t *testing.T) {
		want := []int{4242, 4247, 4248, 4249, 4250}
		if pids := findPIDs(t, in, id); !slices.Equal(pids, want) {
			t.Errorf("Find = %v, want %v", pids, want)
		}
	})
}

// findPIDs returns the PIDs Find reports, checking that each was measured.
func findPIDs(t *testing.T, in *procid.Inspector, id procid.Identity) []int {
	t.Helper()
	found, err := in.Find(id)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range found {
		if p.Status != procid.StatusRunning || p.CreateTime == 0 {
			t.Errorf("found %+v", p)
		}
		pids = append(pids, p.PID)
	}
	return pids
}

func TestFind(t *testing.T) {
	h := testkit.NewHome(t)
	a, procA := h.Run(testkit.Spec{Name: "a", LogicalName: "a"})
	b, procB := h.Run(testkit.Spec{Name: "b", LogicalName: "b"})
	// Steam's row lost track of a's PID; Find must not care.
	h.Exec(`UPDATE service SET process_id = 0 WHERE id = ?`, a.ID)
	// Two copies of one deployment (never listening, so both can run).
	twin := h.Add(testkit.Spec{Name: "twin", LogicalName: "twin", Behaviour: testkit.Behaviour{Mode: "never_ready"}})
	var twins []int
	for range 2 {
		cmd := h.Command(h.Java, twin)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testkit.Reap(t, cmd)
		waitExec(t, cmd)
		twins = append(twins, cmd.Process.Pid)
	}
	crashed := h.Add(testkit.Spec{Name: "crashed", LogicalName: "crashed", Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})
	startZombie(t, h, crashed)
	stopped := h.Add(testkit.Spec{Name: "stopped", LogicalName: "stopped"})
	testkit.StartForeign(t) // an unrelated process to walk past

	in := inspector(t)
	for _, tc := range []struct {
		name string
		d    steam.Deployment
		want []int
	}{
		{name: "row lost the PID", d: a, want: []int{procA.Pid}},
		{name: "only its own java", d: b, want: []int{procB.Pid}},
		{name: "two copies", d: twin, want: twins},
		{name: "zombie is not found", d: crashed, want: nil},
		{name: "nothing running", d: stopped, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pids := findPIDs(t, in, identity(t, tc.d))
			slices.Sort(pids)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(pids, want) {
				t.Errorf("Find = %v, want %v", pids, want)
			}
		})
	}
}

func TestListeners(t *testing.T) {
	h := testkit.NewHome(t)
	a, procA := h.Run(testkit.Spec{Name: "a", LogicalName: "a"})
	foreign := testkit.StartForeign(t)
	free, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	in := inspector(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		port int
		want []int
	}{
		{name: "deployment's port", port: int(a.Port), want: []int{procA.Pid}},
		{name: "free port", port: free, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pids, err := in.Listeners(ctx, tc.port)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pids, tc.want) {
				t.Errorf("Listeners(%d) = %v, want %v", tc.port, pids, tc.want)
			}
			for _, pid := range []int{procA.Pid, foreign.Pid} {
				want := slices.Contains(tc.want, pid)
				if got := in.ListensOn(ctx, pid, tc.port); got != want {
					t.Errorf("ListensOn(%d, %d) = %v, want %v", pid, tc.port, got, want)
				}
			}
		})
	}
}

func TestNewInspectorMissingProc(t *testing.T) {
	_, err := procid.NewInspector(filepath.Join(t.TempDir(), "nope"))
	if err == nil {
		t.Fatal("NewInspector on a missing procfs succeeded")
	}
	if !strings.Contains(err.Error(), "nope") {
		t.Errorf("error does not say what is missing: %v", err)
	}
}

// Remeasure trusts a verified process's command line only while its start
// time holds and it is no zombie.
func TestRemeasure(t *testing.T) {
	root := testkit.ProcFixture(t, "")
	in, err := procid.NewInspector(root)
	if err != nil {
		t.Fatal(err)
	}
	id := procid.Identity{JettyRunner: "/opt/steam/var/master/assets/jetty-runner.jar", Port: 8080,
		Wars: []string{"/opt/steam/var/master/model/3/churn.war"}}
	verified := in.Inspect(4242, id)
	if verified.Status != procid.StatusRunning {
		t.Fatalf("inspected %+v, want running", verified)
	}
	// Were the command line read, 4242 would now be pid_reused.
	if err := os.WriteFile(filepath.Join(root, "4242", "cmdline"), []byte("sleep\x00600\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	restarted := verified
	restarted.CreateTime += 1000
	// 4243 started when 4242 did; as a real zombie, it has no memory left.
	if err := os.WriteFile(filepath.Join(root, "4243", "statm"), []byte("0 0 0 0 0 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zombie := verified
	zombie.PID = 4243

	for _, tc := range []struct {
		name string
		prev procid.Process
		want procid.Status
	}{
		{"same process: command line not read again", verified, procid.StatusRunning},
		{"other start time: inspected afresh", restarted, procid.StatusPIDReused},
		{"zombie", zombie, procid.StatusZombie},
		{"gone", procid.Process{PID: 4299, Status: procid.StatusRunning}, procid.StatusDead},
		{"never verified", procid.Process{PID: 4242, Status: procid.StatusPIDReused}, procid.StatusPIDReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := in.Remeasure(tc.prev, id)
			if got.Status != tc.want {
				t.Errorf("Remeasure(%+v) = %+v, want %s", tc.prev, got, tc.want)
			}
			if tc.want == procid.StatusRunning && got != verified {
				t.Errorf("Remeasure = %+v, want the same figures as Inspect %+v", got, verified)
			}
		})
	}
}

// A remeasured java is pinned by a pidfd; a pinned one keeps its start and
// owner while it runs and is inspected afresh once it exits, reaped or not.
func TestRemeasurePinned(t *testing.T) {
	h := testkit.NewHome(t)
	in := inspector(t)
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, cmd *exec.Cmd)
		want procid.Status
	}{
		{"running", func(*testing.T, *exec.Cmd) {}, procid.StatusRunning},
		{"killed and reaped", func(t *testing.T, cmd *exec.Cmd) {
			testkit.Reap(t, cmd)
			testkit.Kill(t, cmd.Process)
		}, procid.StatusDead},
		{"killed, not reaped", func(t *testing.T, cmd *exec.Cmd) {
			t.Cleanup(func() { _ = cmd.Wait() })
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, 10*time.Second, "the java to become a zombie", func() bool {
				return procState(cmd.Process.Pid) == "Z"
			})
		}, procid.StatusZombie},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := h.Add(testkit.Spec{Name: strings.ReplaceAll(tc.name, " ", "-"), LogicalName: "pinned"})
			cmd := h.Command(h.Java, d)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			waitExec(t, cmd)
			id := identity(t, h.Deployment(d.ID))
			verified := in.Inspect(cmd.Process.Pid, id)
			pinned := in.Remeasure(in.Remeasure(verified, id), id)
			if pinned.Status != procid.StatusRunning || pinned.CreateTime != verified.CreateTime ||
				pinned.StartTime != verified.StartTime || pinned.UID != verified.UID || pinned.VirtualBytes == 0 {
				t.Fatalf("remeasured %+v, want the running process inspected as %+v", pinned, verified)
			}
			tc.end(t, cmd)
			if got := in.Remeasure(pinned, id); got.Status != tc.want || got.PID != verified.PID {
				t.Errorf("Remeasure after the java ended = %+v, want %s", got, tc.want)
			}
		})
	}
}
