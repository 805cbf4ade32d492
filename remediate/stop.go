package remediate

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
)

type namedSignal struct {
	sig  syscall.Signal
	name string
}

var (
	sigint  = namedSignal{syscall.SIGINT, "SIGINT"}
	sigkill = namedSignal{syscall.SIGKILL, "SIGKILL"}
)

// target is a process to stop: with the session it leads (its children
// keep the port otherwise), or alone when it leads none.
type target struct {
	pid     int
	session *procid.Session
	// signal and gone are the process's own, used without a session.
	signal func(syscall.Signal) (done bool, err error)
	gone   func() bool
}

// stopChild targets the engine's own child: started with setsid, it leads
// its session. Only start's goroutine reaps it, so its PID is not reused
// before exited closes, and os.Process signals through a pidfd.
func (e *Engine) stopChild(ctx context.Context, c *child) (string, error) {
	return e.stopTarget(ctx, target{pid: c.pid, session: &procid.Session{ID: c.pid}})
}

// stopVerified targets a java the engine did not start, signalled only
// through procid's re-verification; its session only if it leads its own
// (never the session it sits in, which may be Steam's).
func (e *Engine) stopVerified(ctx context.Context, proc procid.Process, id procid.Identity) (string, error) {
	s, leads, err := e.procs.LeadsSession(proc, id)
	switch {
	case errors.Is(err, procid.ErrNotVerified):
		return "none", nil
	case err != nil:
		return "none", err
	}
	t := target{pid: proc.PID,
		signal: func(sig syscall.Signal) (bool, error) {
			err := e.procs.Signal(proc, id, sig)
			if errors.Is(err, procid.ErrNotVerified) {
				return true, nil
			}
			return false, err
		},
		gone: func() bool { return e.procs.Inspect(proc.PID, id).Status != procid.StatusRunning },
	}
	if leads {
		t.session = &s
	}
	return e.stopTarget(ctx, t)
}

// stopTarget stops t the way Steam stops a deployment: SIGINT every
// StopInterval for StopTimeout, then SIGKILL (at once if ctx ends, or if t
// is stopped by SIGSTOP and so deaf to SIGINT). It returns the last signal
// sent ("none" if it went by itself), naming the session if it was signalled.
func (e *Engine) stopTarget(ctx context.Context, t target) (string, error) {
	sent, to := "none", ""
	signal, gone := t.signal, t.gone
	if t.session != nil {
		to = " to its session"
		signal = func(sig syscall.Signal) (bool, error) {
			delivered, err := t.session.Signal(sig)
			return !delivered, err
		}
		gone = func() bool { d, _ := t.session.Signal(0); return !d }
	}
	send := func(s namedSignal) (bool, error) {
		done, err := signal(s.sig)
		if err != nil {
			return false, fmt.Errorf("sending %s to PID %d: %w", s.name, t.pid, err)
		}
		if !done {
			sent = s.name + to
		}
		return done, nil
	}
	deadline := time.Now().Add(e.cfg.StopTimeout)
	for time.Now().Before(deadline) {
		if e.procs.Stopped(t.pid) {
			to += " at once: the process was stopped (state T)"
			break
		}
		if done, err := send(sigint); done || err != nil {
			return sent, err
		}
		if waitGone(ctx, gone, e.cfg.StopInterval) {
			return sent, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if done, err := send(sigkill); done || err != nil {
		return sent, err
	}
	if waitGone(context.WithoutCancel(ctx), gone, 10*time.Second) {
		return sent, nil
	}
	return sent, fmt.Errorf("PID %d did not exit after SIGKILL", t.pid)
}

// waitGone polls gone for up to d.
func waitGone(ctx context.Context, gone func() bool, d time.Duration) bool {
	end := time.Now().Add(d)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		if gone() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		select {
		case <-ctx.Done():
			return gone()
		case <-time.After(wait):
		}
	}
}
