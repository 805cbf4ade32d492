package remediate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Readiness is polled often at first, since the fake services of tests and
// small wars are ready in milliseconds, then every quarter second, which is
// nothing next to a JVM's start.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 250 * time.Millisecond
)

// restart starts the deployment's java, waits until it is ready and records
// its PID.
func (e *Engine) restart(ctx context.Context, d decision, queued time.Time) (outcome, error) {
	dep := d.deployment
	now := e.cfg.Now()
	// Counted before the start: a remediator killed while it waits for
	// readiness must not have made a start the flapping limit never sees.
	if err := e.state.RecordStart(ctx, dep.ID, now, now.Add(-e.cfg.Policy.Window)); err != nil {
		return outcome{Outcome: d.Outcome}, err
	}
	o := d.Outcome
	o.Action = ActionRestart
	failed := func(reason string) (outcome, error) {
		o.Result, o.Reason, o.Duration = ResultFailure, reason, time.Since(queued)
		e.countFailure(ctx, &d.policy, o)
		return outcome{Outcome: o, journaled: true}, nil
	}

	c, err := e.start(dep, d.java)
	if err != nil {
		return failed("start_error: " + err.Error())
	}
	o.NewPID = int64(c.pid)
	e.logger.Info("Started deployment", "deployment_id", dep.ID, "deployment", dep.Name, "pid", c.pid,
		"port", dep.Port, "log", c.logPath)

	v := e.waitReady(ctx, c, int(dep.Port))
	switch {
	case v.abandoned:
		// Shutting down. The process is left running and the policy is
		// told nothing it did not see: the next remediation adopts the
		// process if it runs, or starts the deployment again if not.
		o.Result, o.Reason = ResultFailure, "abandoned: the remediator stopped; the process was left running"
		return outcome{Outcome: o}, nil
	case !v.ready:
		if c.hasExited() {
			return failed(v.reason)
		}
		e.logger.Info("Start failed; stopping its process", "deployment_id", dep.ID, "pid", c.pid, "reason", v.reason)
		sig, err := e.stop(ctx, c)
		if err != nil {
			e.logger.Error("Could not stop a failed start", "deployment_id", dep.ID, "pid", c.pid, "err", err)
			return failed(v.reason + "; not stopped: " + err.Error())
		}
		return failed(v.reason + "; stopped with " + sig)
	}
	readyAt := time.Now()
	e.logger.Debug("Deployment serves; recording its PID", "deployment_id", dep.ID, "pid", c.pid)

	// From here on the process serves: whatever happens to the row, it is
	// never stopped.
	if err := e.recordPID(ctx, d, c.pid); err != nil {
		e.logger.Warn("New process serves but its PID could not be recorded; it keeps running and will be adopted",
			"deployment_id", dep.ID, "pid", c.pid, "err", err)
		o.Result, o.Reason, o.Duration = ResultFailure, "pid_not_recorded: "+err.Error(), time.Since(queued)
	} else {
		// A restart's duration ends at readiness, not after the
		// bookkeeping that follows it.
		o.Result, o.Duration = ResultSuccess, readyAt.Sub(queued)
		e.metrics.restartDuration.Observe(o.Duration.Seconds())
	}
	e.savePolicy(ctx, e.cfg.Policy.ready(d.policy, c.pid, e.cfg.Now(), e.cfg.WatchAfterReady), &d.policy)
	// Journaled before the watch begins, so that a death in the window is
	// journaled after the restart it undoes.
	e.finish(ctx, o)
	e.watch(c, dep)
	return outcome{Outcome: o, journaled: true}, nil
}

// child is a java the engine started.
type child struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	// offset is where this start's output begins in the log.
	offset int64
	// exited is closed once the process has been waited for; waitErr is
	// set before.
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

// start runs java exactly as Steam does, with no shell between:
//
//	java [opts] -jar <home>/var/master/assets/jetty-runner.jar --port <port> <war>
//
// in its own session, reading /dev/null and appending to its log file, so
// that it outlives the remediator. A goroutine waits for it, so it never
// lingers as a zombie while the remediator runs.
func (e *Engine) start(dep steam.Deployment, java string) (*child, error) {
	args := slices.Concat(e.cfg.JavaOpts,
		[]string{"-jar", e.cfg.Home.JettyRunner(), "--port", strconv.FormatInt(dep.Port, 10), dep.War})
	cmd := exec.Command(java, args...)
	// Steam execs "java" through PATH; its processes, and so the identity
	// they are recognised by, have argv[0] "java" whatever the path.
	cmd.Args[0] = "java"
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
	cmd.Stdout, cmd.Stderr = f, f // Stdin nil is /dev/null
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

// verdict is how a start ended.
type verdict struct {
	ready     bool
	abandoned bool   // the engine is shutting down
	reason    string // why it failed
}

// waitReady polls /ping until it answers 200 from the started process, while
// watching for early verdicts: the process exiting, or its log saying
// FAILED or that the port is taken.
func (e *Engine) waitReady(ctx context.Context, c *child, port int) verdict {
	timeout := time.NewTimer(e.cfg.StartTimeout)
	defer timeout.Stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/ping", port)
	output := &logScanner{path: c.logPath, offset: c.offset}
	for wait := firstPoll; ; wait = min(wait*3/2, maxPoll) {
		poll := time.NewTimer(wait)
		select {
		case <-c.exited:
			poll.Stop()
			output.scan(true)
			if output.verdict != "" {
				return verdict{reason: output.verdict}
			}
			reason := "exited: " + c.exitStatus()
			if output.last != "" {
				reason += " (" + output.last + ")"
			}
			return verdict{reason: reason}
		case <-ctx.Done():
			poll.Stop()
			return verdict{abandoned: true}
		case <-timeout.C:
			poll.Stop()
			return verdict{reason: fmt.Sprintf("not_ready: /ping did not answer 200 within %s", e.cfg.StartTimeout)}
		case <-poll.C:
		}
		if output.scan(false); output.verdict != "" {
			return verdict{reason: output.verdict}
		}
		// Whatever answers must be the process just started: a port taken
		// since the check would answer too.
		if ping(ctx, url) && listensOn(c.pid, port) && !c.hasExited() {
			return verdict{ready: true}
		}
	}
}

// pingClient never reuses a connection (each poll may meet another
// listener), never follows a redirect (only a 200 means ready) and never
// goes through a proxy.
var pingClient = &http.Client{
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func ping(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := pingClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// listeners returns the PIDs listening on port (0 for an owner that cannot
// be read). The kernel is asked first whether anything listens: finding
// the owners means reading every process's descriptors, which is worth it
// only when somebody does.
func (e *Engine) listeners(ctx context.Context, port int) ([]int, error) {
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		held, err := portListening(port)
		if err != nil || !held {
			return nil, err
		}
		pids, err := e.procs.Listeners(ctx, port)
		if err != nil {
			return nil, fmt.Errorf("finding the owner of port %d: %w", port, err)
		}
		if len(pids) > 0 {
			return pids, nil
		}
		// A listener without an owner in /proc: a process on its way
		// out (its main thread is a zombie while its other threads, on
		// a busy machine, have yet to run and close its sockets), or one
		// that cannot be seen (hidepid). The first lets go within a
		// second or two; the second never does and is not ours to take.
		if wait > 1280*time.Millisecond {
			return []int{0}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// stop ends a failed start's process the way Steam stops a deployment:
// SIGINT every StopInterval for StopTimeout, then SIGKILL. If ctx ends first
// (the engine shuts down), SIGKILL goes at once: a never-ready process left
// running would be adopted by the next remediation. It returns the last
// signal sent ("none" if the process went by itself).
//
// No identity check precedes a signal, and none is needed: the process is
// the engine's own child, which only start's goroutine reaps, so its PID
// cannot be reused before c.exited closes; os.Process signals it through a
// pidfd where the kernel has them, and once Wait has reaped it, Signal
// returns os.ErrProcessDone rather than signal anything. A check of its
// command line would only refuse to stop a java run through a wrapper
// script, or one not yet done with its exec.
func (e *Engine) stop(ctx context.Context, c *child) (string, error) {
	sent := "none"
	signal := func(sig syscall.Signal, name string) error {
		err := c.cmd.Process.Signal(sig)
		switch {
		case err == nil:
			sent = name
		case !errors.Is(err, os.ErrProcessDone):
			return fmt.Errorf("sending %s to PID %d: %w", name, c.pid, err)
		}
		return nil
	}
	kill := time.NewTimer(e.cfg.StopTimeout)
	defer kill.Stop()
	again := time.NewTicker(e.cfg.StopInterval)
	defer again.Stop()
	for sigint := true; sigint; {
		if err := signal(syscall.SIGINT, "SIGINT"); err != nil {
			return sent, err
		}
		select {
		case <-c.exited:
			return sent, nil
		case <-again.C:
		case <-kill.C:
			sigint = false
		case <-ctx.Done():
			sigint = false
		}
	}
	if err := signal(syscall.SIGKILL, "SIGKILL"); err != nil {
		return sent, err
	}
	select {
	case <-c.exited:
		return sent, nil
	case <-ctx.Done():
		// The kernel ends it whether or not anybody waits.
		return sent, nil
	case <-time.After(10 * time.Second):
		return sent, fmt.Errorf("PID %d did not exit after SIGKILL", c.pid)
	}
}

// recordPID writes the ready process's PID into the row by compare-and-set,
// retrying while Steam holds its lock. If the row changed since it
// was read, it is read again: a dead PID there is replaced; a live process
// of the deployment, a stopped or deleted row are reported and left alone.
func (e *Engine) recordPID(ctx context.Context, d decision, pid int) error {
	// Steam may hold its lock for a while; RecordTimeout bounds the wait.
	// When the engine shuts down, the wait is abandoned: the process keeps
	// serving, and the next remediation adopts it under its PID.
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RecordTimeout)
	defer cancel()
	old := d.OldPID
	for range 3 {
		err := e.registry.SetPID(ctx, d.DeploymentID, old, int64(pid))
		if !errors.Is(err, steam.ErrPIDChanged) {
			return err
		}
		dep, err := e.registry.Deployment(ctx, d.DeploymentID)
		switch {
		case err != nil:
			return err
		case dep.PID == int64(pid):
			return nil
		case dep.State != steam.StateStarted:
			return fmt.Errorf("row_changed: the deployment's state became %q", dep.State)
		case e.procs.Inspect(int(dep.PID), d.identity).Status == procid.StatusRunning:
			return fmt.Errorf("row_changed: the row now holds PID %d, which runs the deployment too", dep.PID)
		}
		e.logger.Info("Deployment's row changed while it was restarted; recording the new PID over the dead one",
			"deployment_id", d.DeploymentID, "row_pid", dep.PID, "pid", pid)
		old = dep.PID
	}
	return errors.New("row_changed: the row kept changing")
}

// watch follows a ready process through its watch window: if it dies
// there, its start counts as failed; if it lives through it, the policy
// forgets past failures.
func (e *Engine) watch(c *child, dep steam.Deployment) {
	e.watchers.Add(1)
	go func() {
		defer e.watchers.Done()
		t := time.NewTimer(e.cfg.WatchAfterReady)
		defer t.Stop()
		select {
		case <-e.watchCtx.Done():
			// The policy remembers the window; the next remediation
			// closes it.
		case <-t.C:
			e.closeWatch(c, dep, false)
		case <-c.exited:
			e.closeWatch(c, dep, true)
		}
	}()
}

func (e *Engine) closeWatch(c *child, dep steam.Deployment, died bool) {
	// A remediation of the same deployment may hold the lock; it closes
	// the window the same way, and whoever comes second finds it closed.
	ctx := e.watchCtx
	unlock, err := e.lock(ctx, dep.ID)
	if err != nil {
		if ctx.Err() == nil {
			e.logger.Error("Could not lock deployment to close its watch window", "deployment_id", dep.ID, "err", err)
		}
		return
	}
	defer unlock()
	pol, err := e.state.RestartPolicy(ctx, dep.ID)
	if err != nil {
		e.logger.Error("Could not read restart policy", "deployment_id", dep.ID, "err", err)
		return
	}
	if pol.ProbationPID != int64(c.pid) {
		return
	}
	if !died || stoppedBySteam(ctx, e.registry, dep.ID) {
		e.savePolicy(ctx, e.cfg.Policy.healthy(pol), &pol)
		return
	}
	output := &logScanner{path: c.logPath, offset: c.offset}
	output.scan(true)
	reason := "died_after_ready: " + c.exitStatus()
	if output.last != "" {
		reason += " (" + output.last + ")"
	}
	e.countFailure(ctx, &pol, Outcome{DeploymentID: dep.ID, Deployment: dep.Name, Action: ActionFailure,
		Result: ResultFailure, Reason: reason, OldPID: int64(c.pid), NewPID: int64(c.pid)})
}

// stoppedBySteam reports whether Steam no longer wants the deployment
// running (its row is gone or no longer started): a process that Steam
// stopped during its watch window did not fail to start.
func stoppedBySteam(ctx context.Context, registry *steam.Registry, id int64) bool {
	d, err := registry.Deployment(ctx, id)
	if errors.Is(err, steam.ErrNotFound) {
		return true
	}
	return err == nil && d.State != steam.StateStarted
}

// logScanner reads a start's log from its offset on, for the lines that
// give an early verdict, as Steam reads its children's output.
type logScanner struct {
	path    string
	offset  int64
	partial []byte
	verdict string // the first line that says the start failed
	last    string // the last line, for the journal
}

// maxScan bounds what one scan reads, and maxLine a line: a child that
// floods its log must not stall the remediation.
const (
	maxScan = 1 << 20
	maxLine = 64 << 10
)

// scan reads what was appended since the last scan. final treats an
// unterminated last line as complete: the process has exited.
func (s *logScanner) scan(final bool) {
	f, err := os.Open(s.path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	for read := 0; read < maxScan; {
		n, err := f.ReadAt(buf, s.offset)
		s.offset += int64(n)
		read += n
		s.consume(buf[:n])
		if err != nil || n == 0 {
			break
		}
	}
	if final && len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func (s *logScanner) consume(b []byte) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > maxLine {
		s.line(string(s.partial))
		s.partial = nil
	}
}

func (s *logScanner) line(l string) {
	l = strings.TrimSpace(l)
	if l == "" {
		return
	}
	if len(l) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	s.last = l
	if s.verdict != "" {
		return
	}
	switch {
	case strings.Contains(l, "BindException") || strings.Contains(l, "Address already in use"):
		s.verdict = "address_in_use: " + l
	case strings.Contains(l, "FAILED"):
		s.verdict = "failed: " + l
	}
}
