package remediate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// child is a java the engine started.
type child struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	offset  int64 // where this start's output begins in the log
	// exited is closed once the process has been reaped; waitErr is set before.
	exited  chan struct{}
	waitErr error
}

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// exitStatus says how the process ended; call it after exited is closed.
func (c *child) exitStatus() string {
	if c.waitErr == nil {
		return "exit status 0"
	}
	return c.waitErr.Error()
}

// start runs java exactly as Steam does, with no shell, in its own session,
// reading /dev/null and appending to its log, so that it outlives the
// remediator. A goroutine reaps it.
func (e *Engine) start(dep steam.Deployment, java string) (*child, error) {
	args := slices.Concat(e.cfg.JavaOpts,
		[]string{"-jar", e.cfg.Home.JettyRunner(), "--port", strconv.FormatInt(dep.Port, 10), dep.War})
	cmd := exec.Command(java, args...)
	cmd.Args[0] = "java" // as Steam's, whatever the path: the identity depends on it
	cmd.Dir = e.cfg.Home.MasterDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	if err := os.MkdirAll(e.cfg.Home.LogDir(), 0o755); err != nil {
		return nil, fmt.Errorf("creating log folder: %w", err)
	}
	logPath := filepath.Join(e.cfg.Home.LogDir(), fmt.Sprintf("deployment-%d.log", dep.ID))
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening deployment log: %w", err)
	}
	defer f.Close() // the child has its own copy
	if _, err := fmt.Fprintf(f, "%s steam-overseer remediator: starting deployment %d (%s): %s\n",
		time.Now().UTC().Format(time.RFC3339), dep.ID, dep.Name, strings.Join(cmd.Args, " ")); err != nil {
		return nil, fmt.Errorf("writing deployment log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading deployment log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, offset: fi.Size(), exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}
