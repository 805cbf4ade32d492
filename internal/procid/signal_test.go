package procid_test

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestSignal sends SIGKILL through Signal and then looks at how the process
// ended, which the test learns from its own wait: a process Signal refused
// must not have died of SIGKILL.
func TestSignal(t *testing.T) {
	h := testkit.NewHome(t)
	// never_ready: copies of one deployment run side by side without a port.
	d := h.Add(testkit.Spec{Name: "a", LogicalName: "a", Behaviour: testkit.Behaviour{Mode: "never_ready"}})
	id := identity(t, d)
	in := inspector(t)

	// start runs a process the test waits for itself; waited is closed
	// once it has been reaped.
	type proc struct {
		cmd    *exec.Cmd
		waited chan struct{}
	}
	start := func(t *testing.T, cmd *exec.Cmd) proc {
		t.Helper()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := proc{cmd: cmd, waited: make(chan struct{})}
		t.Cleanup(func() {
			select {
			case <-p.waited:
			default:
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		waitExec(t, cmd)
		return p
	}
	wait := func(p proc) syscall.WaitStatus {
		_ = p.cmd.Wait()
		close(p.waited)
		return p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	}

	for _, tc := range []struct {
		name string
		// prepare returns what Signal is called with: a process and the
		// identity it is to be verified against.
		prepare func(t *testing.T, p proc) (procid.Process, procid.Identity)
		foreign bool // the process is sleep, not the deployment's java
		// gone: the process has exited and been reaped before Signal.
		gone        bool
		wantErr     error
		wantSIGKILL bool
	}{
		{
			name: "verified",
			prepare: func(t *testing.T, p proc) (procid.Process, procid.Identity) {
				return in.Inspect(p.cmd.Process.Pid, id), id
			},
			wantSIGKILL: true,
		},
		{
			// The PID of a process that exited and was reused by another
			// start of the same deployment.
			name: "other start time",
			prepare: func(t *testing.T, p proc) (procid.Process, procid.Identity) {
				got := in.Inspect(p.cmd.Process.Pid, id)
				got.CreateTime -= 1000
				return got, id
			},
			wantErr: procid.ErrNotVerified,
		},
		{
			name: "another deployment's identity",
			prepare: func(t *testing.T, p proc) (procid.Process, procid.Identity) {
				other := id
				other.Port++
				return in.Inspect(p.cmd.Process.Pid, id), other
			},
			wantErr: procid.ErrNotVerified,
		},
		{
			name:    "pid reused by another program",
			foreign: true,
			prepare: func(t *testing.T, p proc) (procid.Process, procid.Identity) {
				// Claimed running with sleep's own start time: only the
				// command line tells it apart.
				pid := p.cmd.Process.Pid
				return procid.Process{PID: pid, Status: procid.StatusRunning, CreateTime: createTime(t, pid)}, id
			},
			wantErr: procid.ErrNotVerified,
		},
		{
			name: "zombie",
			prepare: func(t *testing.T, p proc) (procid.Process, procid.Identity) {
				got := in.Inspect(p.cmd.Process.Pid, id)
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				testkit.Eventually(t, 10*time.Second, "the process to become a zombie", func() bool {
					return procState(p.cmd.Process.Pid) == "Z"
				})
				return got, id
			},
			wantErr: procid.ErrNotVerified,
		},
		{
			name: "exited and reaped",
			gone: true,
			prepare: func(t *testing.T, p proc) (procid.Process, procid.Identity) {
				got := in.Inspect(p.cmd.Process.Pid, id)
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				wait(p)
				return got, id
			},
			wantErr: procid.ErrNotVerified,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := h.Command(h.Java, d)
			if tc.foreign {
				cmd = exec.Command("sleep", "600")
			}
			p := start(t, cmd)
			target, targetID := tc.prepare(t, p)
			if !tc.foreign && !tc.gone && target.Status != procid.StatusRunning {
				t.Fatalf("the deployment's java inspected as %+v", target)
			}

			err := in.Signal(target, targetID, syscall.SIGKILL)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Signal(%+v) = %v, want %v", target, err, tc.wantErr)
			}
			if tc.gone {
				return
			}
			if !tc.wantSIGKILL {
				// A SIGKILL delivered above would win over this SIGTERM.
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
					t.Fatal(err)
				}
			}
			ws := wait(p)
			if killed := ws.Signaled() && ws.Signal() == syscall.SIGKILL; killed != tc.wantSIGKILL {
				t.Errorf("process ended with %v; died of SIGKILL: %v, want %v", ws, killed, tc.wantSIGKILL)
			}
		})
	}
}

// createTime asks gopsutil itself, not the code under test, for pid's
// create time.
func createTime(t *testing.T, pid int) int64 {
	t.Helper()
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.CreateTime()
	if err != nil {
		t.Fatalf("create time of %d: %v", pid, err)
	}
	return ms
}

// TestLeadsSession: a java started with setsid leads its session, which
// Session.Signal reaches; one started in its own process group (as Steam
// starts it) leads none, so its session is never signalled.
func TestLeadsSession(t *testing.T) {
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "a", LogicalName: "a", Behaviour: testkit.Behaviour{Mode: "never_ready"}})
	id := identity(t, d)
	in := inspector(t)
	for _, tc := range []struct {
		name   string
		setsid bool
	}{
		{name: "setsid", setsid: true},
		{name: "own process group", setsid: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := h.Command(h.Java, d)
			if tc.setsid {
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			waitExec(t, cmd)
			p := in.Inspect(cmd.Process.Pid, id)
			s, leads, err := in.LeadsSession(p, id)
			if err != nil || leads != tc.setsid {
				t.Fatalf("LeadsSession: %v, %v; want %v", leads, err, tc.setsid)
			}
			if !leads {
				return
			}
			if delivered, err := s.Signal(syscall.SIGKILL); !delivered || err != nil {
				t.Fatalf("Session.Signal: %v, %v", delivered, err)
			}
			_ = cmd.Wait()
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
				t.Errorf("ended by %v, want SIGKILL", ws)
			}
			if delivered, err := s.Signal(0); delivered || err != nil {
				t.Errorf("an empty session still signalled: %v, %v", delivered, err)
			}
		})
	}
}
