package procid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/procfs"
	gnet "github.com/shirou/gopsutil/v3/net"
)

// Status is what became of a deployment's recorded PID.
type Status string

// The statuses, as the steam_deployment_status metric labels them.
const (
	// StatusRunning: alive, not a zombie, and its command line is this
	// deployment's java.
	StatusRunning Status = "running"
	// StatusDead: no such process.
	StatusDead Status = "dead"
	// StatusZombie: exited but not reaped; it serves nothing.
	StatusZombie Status = "zombie"
	// StatusPIDReused: alive, but another program or another deployment.
	StatusPIDReused Status = "pid_reused"
	// StatusNoPID: Steam recorded no PID (process_id ≤ 0).
	StatusNoPID Status = "no_pid"
	// StatusUnknown: the process could not be read (permissions, hidepid).
	StatusUnknown Status = "unknown"
)

// Statuses lists every status, in the order metrics expose them.
var Statuses = []Status{StatusRunning, StatusDead, StatusZombie, StatusPIDReused, StatusNoPID, StatusUnknown}

// Process is what one look at a PID found. The resource fields are set only
// when Status is StatusRunning: a process not proven to be the deployment's
// is never measured on its behalf.
type Process struct {
	PID    int
	Status Status
	// Err says why Status is StatusUnknown.
	Err error

	CPUSeconds    float64 // user + system
	ResidentBytes uint64
	VirtualBytes  uint64
	StartTime     float64 // seconds since the Unix epoch
	// StartTicks is the start time in clock ticks since boot, as the kernel
	// reports it. PID and StartTicks together name one process for good: a
	// reused PID has another start.
	StartTicks uint64
}

// Inspector reads processes from a procfs mount. Per PID it reads just
// /proc/<pid>/stat and /proc/<pid>/cmdline, each once (stat twice for a
// process without a command line), so inspecting a thousand deployments
// stays cheap. Only when the command line spells the home otherwise than
// the identity does (a symbolic link) are the two paths looked up.
type Inspector struct {
	fs       procfs.FS
	root     string
	bootTime float64
}

// NewInspector reads processes under procRoot ("" means /proc); tests hand in
// fixtures.
func NewInspector(procRoot string) (*Inspector, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("opening procfs at %s: %w", procRoot, err)
	}
	// Boot time is read once: the kernel's btime wobbles by a second under
	// NTP, and start times computed from it must not.
	st, err := pfs.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading boot time from %s/stat: %w", procRoot, err)
	}
	return &Inspector{fs: pfs, root: procRoot, bootTime: float64(st.BootTime)}, nil
}

// Inspect decides what pid is with respect to id. ok=false identities (a
// deployment whose row cannot be recognised) make any live process
// StatusPIDReused: it cannot be proven to be the deployment's.
//
// It reads the two files itself rather than through procfs: a scrape does
// this a thousand times, and procfs's generic parsing (fmt.Fscan of 42
// fields) and file handling cost more than the kernel's work.
func (in *Inspector) Inspect(pid int, id Identity) Process {
	p := Process{PID: pid}
	if pid <= 0 {
		p.Status = StatusNoPID
		return p
	}
	dir := in.root + "/" + strconv.Itoa(pid)
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)

	stat, err := readStat(dir, buf)
	if err != nil {
		return p.failed(err)
	}
	switch stat.state {
	case 'Z':
		p.Status = StatusZombie
		return p
	case 'X', 'x':
		p.Status = StatusDead
		return p
	}
	cmdline, err := readProcFile(dir+"/cmdline", buf)
	if err != nil {
		return p.failed(err)
	}
	argv := splitCmdline(cmdline)
	if !id.Matches(argv, func() string { cwd, _ := os.Readlink(dir + "/cwd"); return cwd }) {
		if len(argv) == 0 {
			// A kernel thread has no command line, and neither has a
			// process that exited after its stat was read: tell them
			// apart.
			if now, err := readStat(dir, buf); err != nil {
				return p.failed(err)
			} else if now.state == 'Z' {
				p.Status = StatusZombie
				return p
			}
		}
		p.Status = StatusPIDReused
		return p
	}
	p.Status = StatusRunning
	p.CPUSeconds = float64(stat.utime+stat.stime) / userHZ
	p.ResidentBytes = uint64(max(stat.rss, 0)) * uint64(os.Getpagesize())
	p.VirtualBytes = stat.vsize
	p.StartTicks = stat.starttime
	p.StartTime = in.bootTime + float64(stat.starttime)/userHZ
	return p
}

// userHZ is the kernel's USER_HZ, which /proc reports times in: 100 on every
// Linux architecture Steam runs on (procfs assumes the same).
const userHZ = 100

func (p Process) failed(err error) Process {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		// Gone, or gone between two reads: either way nothing runs there.
		p.Status = StatusDead
		return p
	}
	p.Status = StatusUnknown
	p.Err = fmt.Errorf("reading process %d: %w", p.PID, err)
	return p
}

func cwdOf(proc procfs.Proc) func() string {
	return func() string {
		cwd, err := proc.Cwd()
		if err != nil {
			return ""
		}
		return cwd
	}
}

// buffers hold the contents of one /proc file at a time; a stat line is a
// few hundred bytes, Steam's java command line well under 4 KiB.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readProcFile reads the whole file at path into *buf, growing it as needed.
// It uses the raw syscalls: an *os.File costs an allocation and an extra
// fstat per open, which a thousand opens per scrape notice.
func readProcFile(path string, buf *[]byte) ([]byte, error) {
	fd, err := openNoEINTR(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			*buf = b
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

func openNoEINTR(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// splitCmdline splits /proc/<pid>/cmdline's NUL-terminated arguments.
func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// procStat holds the fields of /proc/<pid>/stat that Inspect uses.
type procStat struct {
	state                          byte
	utime, stime, starttime, vsize uint64
	rss                            int64 // pages
}

// readStat reads and parses <dir>/stat (see proc_pid_stat(5)).
func readStat(dir string, buf *[]byte) (procStat, error) {
	data, err := readProcFile(dir+"/stat", buf)
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after its closing parenthesis are plain numbers.
	r := bytes.LastIndexByte(data, ')')
	if r < 0 {
		return procStat{}, fmt.Errorf("%s/stat: no command name in %q", dir, data)
	}
	var f [22][]byte // state (field 3) to rss (field 24)
	n := 0
	for field := range bytes.FieldsSeq(data[r+1:]) {
		if n == len(f) {
			break
		}
		f[n] = field
		n++
	}
	if n < len(f) || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("%s/stat: malformed %q", dir, data)
	}
	st := procStat{state: f[0][0]}
	var errs [5]error
	st.utime, errs[0] = strconv.ParseUint(string(f[11]), 10, 64)
	st.stime, errs[1] = strconv.ParseUint(string(f[12]), 10, 64)
	st.starttime, errs[2] = strconv.ParseUint(string(f[19]), 10, 64)
	st.vsize, errs[3] = strconv.ParseUint(string(f[20]), 10, 64)
	st.rss, errs[4] = strconv.ParseInt(string(f[21]), 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	return st, nil
}

// Find returns every live process that is id's java, whatever its PID: the
// way to recognise a deployment Steam's row has lost track of. It walks all
// of /proc, so it is for remediation, not for every scrape.
func (in *Inspector) Find(id Identity) ([]Process, error) {
	procs, err := in.fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var found []Process
	for _, proc := range procs {
		argv, err := proc.CmdLine()
		if err != nil || len(argv) == 0 || !strings.HasSuffix(argv[0], "java") {
			continue
		}
		if !id.Matches(argv, cwdOf(proc)) {
			continue
		}
		// Inspect again: it rules out zombies and fills in the start time.
		if p := in.Inspect(proc.PID, id); p.Status == StatusRunning {
			found = append(found, p)
		}
	}
	return found, nil
}

// ListenerPIDs returns the PIDs of the processes that listen on TCP port
// (IPv4 or IPv6). A listener whose owner cannot be read (another user's
// process, when not root) is reported with PID 0: the port is taken all the
// same.
func ListenerPIDs(ctx context.Context, port int) ([]int, error) {
	conns, err := gnet.ConnectionsWithContext(ctx, "tcp")
	if err != nil {
		return nil, fmt.Errorf("listing TCP sockets: %w", err)
	}
	seen := map[int]bool{}
	var pids []int
	for _, c := range conns {
		if c.Status != "LISTEN" || int(c.Laddr.Port) != port {
			continue
		}
		pid := int(c.Pid)
		if !seen[pid] {
			seen[pid] = true
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
