package remediate

import (
	"context"
	"errors"
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

type namedSignal struct {
	sig  syscall.Signal
	name string
}

var (
	sigint  = namedSignal{syscall.SIGINT, "SIGINT"}
	sigkill = namedSignal{syscall.SIGKILL, "SIGKILL"}
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

// stop ends the engine's own child the way Steam stops a deployment: SIGINT
// every StopInterval for StopTimeout, then SIGKILL (at once if ctx ends). No
// identity check is needed: only start's goroutine reaps the child, so its
// PID cannot be reused before exited closes, and os.Process signals through
// a pidfd. It returns the last signal sent ("none" if it went by itself).
func (e *Engine) stop(ctx context.Context, c *child) (string, error) {
	sent := "none"
	signal := func(s namedSignal) error {
		err := c.cmd.Process.Signal(s.sig)
		switch {
		case err == nil:
			sent = s.name
		case !errors.Is(err, os.ErrProcessDone):
			return fmt.Errorf("sending %s to PID %d: %w", s.name, c.pid, err)
		}
		return nil
	}
	kill := time.NewTimer(e.cfg.StopTimeout)
	defer kill.Stop()
	again := time.NewTicker(e.cfg.StopInterval)
	defer again.Stop()
	for interrupting := true; interrupting; {
		if err := signal(sigint); err != nil {
			return sent, err
		}
		select {
		case <-c.exited:
			return sent, nil
		case <-again.C:
		case <-kill.C:
			interrupting = false
		case <-ctx.Done():
			interrupting = false
		}
	}
	if err := signal(sigkill); err != nil {
		return sent, err
	}
	select {
	case <-c.exited:
		return sent, nil
	case <-ctx.Done():
		return sent, nil // the kernel ends it whether or not anybody waits
	case <-time.After(10 * time.Second):
		return sent, fmt.Errorf("PID %d did not exit after SIGKILL", c.pid)
	}
}
