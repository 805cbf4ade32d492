package procid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/shirou/gopsutil/v3/common"
	"github.com/shirou/gopsutil/v3/host"
	gnet "github.com/shirou/gopsutil/v3/net"
	"github.com/shirou/gopsutil/v3/process"
	"golang.org/x/sys/unix"
)

// Status is what became of a deployment's recorded PID.
type Status string

const (
	StatusRunning   Status = "running"    // alive and verified as this deployment's java
	StatusDead      Status = "dead"       // no such process
	StatusZombie    Status = "zombie"     // exited, not reaped: serves nothing
	StatusPIDReused Status = "pid_reused" // another program or deployment
	StatusNoPID     Status = "no_pid"     // process_id ≤ 0
	StatusUnknown   Status = "unknown"    // unreadable (permissions, hidepid)
)

// Statuses lists every status, in the order metrics expose them.
var Statuses = []Status{StatusRunning, StatusDead, StatusZombie, StatusPIDReused, StatusNoPID, StatusUnknown}

// Process is one look at a PID; only a StatusRunning one is measured.
type Process struct {
	PID    int
	Status Status
	Err    error // why Status is StatusUnknown

	UserCPUSeconds, SystemCPUSeconds float64 // node_exporter's mode="user" and "system"

	ResidentBytes uint64
	VirtualBytes  uint64
	StartTime     float64 // seconds since the Unix epoch
	CreateTime    int64   // ms since the epoch, whole seconds; with PID, names one process
	UID           uint32  // effective; the owner of the JVM's hsperfdata file

	pin *pin // set by Remeasure: proves the PID still names this process
}

// Inspector reads processes through gopsutil under one procfs mount.
type Inspector struct {
	env common.EnvMap // gopsutil's documented way to name the procfs root

	maxPins int64 // 0: PIDs under the procfs root are not in our namespace
	pins    atomic.Int64
}

// bootTimeCache: without it every process rereads the boot time, and
// create times wobble by a second between two looks.
var bootTimeCache sync.Once

// NewInspector reads processes under procRoot ("" means /proc).
func NewInspector(procRoot string) (*Inspector, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	in := &Inspector{env: common.EnvMap{common.HostProcEnvKey: procRoot}}
	var limit unix.Rlimit
	if procRoot == "/proc" && unix.Getrlimit(unix.RLIMIT_NOFILE, &limit) == nil {
		in.maxPins = int64(min(limit.Cur, math.MaxInt32) / 4) // the rest for sockets and /proc reads
	}
	bootTimeCache.Do(func() { process.EnableBootTimeCache(true) })
	if _, err := host.BootTimeWithContext(in.withRoot(context.Background())); err != nil {
		return nil, fmt.Errorf("reading boot time under %s: %w", procRoot, err)
	}
	return in, nil
}

func (in *Inspector) withRoot(ctx context.Context) context.Context {
	return context.WithValue(ctx, common.EnvKey, in.env)
}

// Inspect decides what pid is; against a zero identity any live process is
// StatusPIDReused.
func (in *Inspector) Inspect(pid int, id Identity) Process {
	p := Process{PID: pid}
	switch {
	case pid <= 0:
		p.Status = StatusNoPID
		return p
	case pid > math.MaxInt32:
		p.Status = StatusDead
		return p
	}
	ctx := in.withRoot(context.Background())
	proc := &process.Process{Pid: int32(pid)}
	argv, err := proc.CmdlineSliceWithContext(ctx)
	if err != nil {
		return p.failed(err)
	}
	if len(argv) == 0 {
		status, err := proc.StatusWithContext(ctx)
		if err != nil {
			return p.failed(err)
		}
		if status[0] == process.Zombie {
			p.Status = StatusZombie
		} else {
			p.Status = StatusPIDReused
		}
		return p
	}
	return verify(ctx, proc, argv, id)
}

func verify(ctx context.Context, proc *process.Process, argv []string, id Identity) Process {
	p := Process{PID: int(proc.Pid)}
	cwd := func() string { dir, _ := proc.CwdWithContext(ctx); return dir }
	if !id.Matches(argv, cwd) {
		p.Status = StatusPIDReused
		return p
	}
	p = measure(ctx, proc)
	if p.Status != StatusRunning {
		return p
	}
	// Read once per process: Remeasure keeps it, a java cannot change user.
	uids, err := proc.UidsWithContext(ctx)
	if err == nil && len(uids) < 2 {
		err = fmt.Errorf("uids %v without an effective one", uids)
	}
	if err != nil {
		return p.failed(err)
	}
	p.UID = uint32(uids[1])
	return p
}

func measure(ctx context.Context, proc *process.Process) Process {
	p := measureFigures(ctx, proc)
	if p.Status != StatusRunning {
		return p
	}
	created, err := proc.CreateTimeWithContext(ctx)
	if err != nil {
		return p.failed(err)
	}
	p.CreateTime = created
	p.StartTime = float64(created) / 1e3
	return p
}

// measureFigures reads what changes while a process runs.
func measureFigures(ctx context.Context, proc *process.Process) Process {
	p := Process{PID: int(proc.Pid)}
	times, err := proc.TimesWithContext(ctx)
	if err != nil {
		return p.failed(err)
	}
	mem, err := proc.MemoryInfoWithContext(ctx)
	if err != nil {
		return p.failed(err)
	}
	p.Status = StatusRunning
	p.UserCPUSeconds, p.SystemCPUSeconds = times.User, times.System
	p.ResidentBytes = mem.RSS
	p.VirtualBytes = mem.VMS
	return p
}

// Remeasure skips the command line while prev is the same process: pinned
// by a pidfd that has not seen it exit after the reads (its PID cannot be
// reused before), or else with prev's start time (whole seconds only: for
// figures, never for signalling). A zombie (no memory) is inspected afresh.
func (in *Inspector) Remeasure(prev Process, id Identity) Process {
	if prev.Status != StatusRunning || prev.PID <= 0 || prev.PID > math.MaxInt32 {
		return in.Inspect(prev.PID, id)
	}
	ctx := in.withRoot(context.Background())
	proc := &process.Process{Pid: int32(prev.PID)}
	if prev.pin != nil {
		p := measureFigures(ctx, proc)
		if p.Status != StatusRunning || p.VirtualBytes == 0 || prev.pin.exited() {
			return in.Inspect(prev.PID, id)
		}
		p.CreateTime, p.StartTime, p.UID, p.pin = prev.CreateTime, prev.StartTime, prev.UID, prev.pin
		return p
	}
	// Opened before the start time is compared, so it pins that process.
	pin := in.openPin(prev.PID)
	p := measure(ctx, proc)
	if p.Status != StatusRunning || p.CreateTime != prev.CreateTime || p.VirtualBytes == 0 {
		pin.release()
		return in.Inspect(prev.PID, id)
	}
	p.UID = prev.UID
	if pin != nil && !pin.exited() {
		p.pin = pin
	} else {
		pin.release()
	}
	return p
}

// StillPinned reports whether p, as Remeasure left it, still runs, by its
// pidfd alone; false without one (then only a Remeasure tells).
func (p Process) StillPinned() bool {
	return p.Status == StatusRunning && p.pin != nil && !p.pin.exited()
}

// pin is a pidfd, closed once no Process holds it.
type pin struct {
	fd      int
	in      *Inspector
	cleanup runtime.Cleanup
}

// openPin returns nil if pidfds are unusable or would take too many files.
func (in *Inspector) openPin(pid int) *pin {
	if in.pins.Add(1) > in.maxPins {
		in.pins.Add(-1)
		return nil
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		in.pins.Add(-1)
		return nil
	}
	p := &pin{fd: fd, in: in}
	p.cleanup = runtime.AddCleanup(p, closePin, pinnedFd{fd, in})
	return p
}

type pinnedFd struct {
	fd int
	in *Inspector
}

func closePin(f pinnedFd) {
	_ = unix.Close(f.fd)
	f.in.pins.Add(-1)
}

// release closes a pin that nothing else holds.
func (p *pin) release() {
	if p != nil {
		p.cleanup.Stop()
		closePin(pinnedFd{p.fd, p.in})
	}
}

// exited reports whether the pinned process exited, or cannot tell.
func (p *pin) exited() bool {
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}, 0)
	runtime.KeepAlive(p) // the fd stays open until the poll returns
	return err != nil || n != 0
}

func (p Process) failed(err error) Process {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		p.Status = StatusDead
		return p
	}
	p.Status = StatusUnknown
	p.Err = fmt.Errorf("reading process %d: %w", p.PID, err)
	return p
}

// Find reads every command line: for remediation, not scrapes.
func (in *Inspector) Find(id Identity) ([]Process, error) {
	ctx := in.withRoot(context.Background())
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var found []Process
	for _, pid := range pids {
		proc := &process.Process{Pid: pid}
		argv, err := proc.CmdlineSliceWithContext(ctx)
		if err != nil || len(argv) == 0 {
			continue
		}
		if p := verify(ctx, proc, argv, id); p.Status == StatusRunning {
			found = append(found, p)
		}
	}
	return found, nil
}

// Listeners returns the PIDs listening on TCP port; 0 is an unreadable owner.
func (in *Inspector) Listeners(ctx context.Context, port int) ([]int, error) {
	conns, err := gnet.ConnectionsWithoutUidsWithContext(in.withRoot(ctx), "tcp")
	if err != nil {
		return nil, fmt.Errorf("listing TCP sockets: %w", err)
	}
	var pids []int
	seen := map[int]bool{}
	for _, c := range conns {
		if pid := int(c.Pid); listening(c, port) && !seen[pid] {
			seen[pid] = true
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ListensOn reports whether pid itself listens on TCP port.
func (in *Inspector) ListensOn(ctx context.Context, pid, port int) bool {
	if pid <= 0 || pid > math.MaxInt32 {
		return false
	}
	conns, err := gnet.ConnectionsPidWithoutUidsWithContext(in.withRoot(ctx), "tcp", int32(pid))
	if err != nil {
		return false
	}
	for _, c := range conns {
		if listening(c, port) {
			return true
		}
	}
	return false
}

func listening(c gnet.ConnectionStat, port int) bool {
	return c.Status == "LISTEN" && int(c.Laddr.Port) == port
}
