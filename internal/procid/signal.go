package procid

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/shirou/gopsutil/v3/process"

	"golang.org/x/sys/unix"
)

// ErrNotVerified: the process exited or its PID names another.
var ErrNotVerified = errors.New("process no longer verified")

// Signal re-verifies p through a pidfd and signals through it, so a PID
// reused in between never receives sig.
func (in *Inspector) Signal(p Process, id Identity, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(p.PID, 0)
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signalling %d: %w", p.PID, ErrNotVerified)
	}
	if err != nil {
		return fmt.Errorf("signalling %d: %w", p.PID, err)
	}
	defer unix.Close(fd)
	now := in.Inspect(p.PID, id)
	if now.Status != StatusRunning || now.CreateTime != p.CreateTime {
		return fmt.Errorf("signalling %d (now %s): %w", p.PID, now.Status, ErrNotVerified)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signalling %d: %w", p.PID, ErrNotVerified)
		}
		return fmt.Errorf("signalling %d: %w", p.PID, err)
	}
	return nil
}

// Stopped: a stopped java handles no SIGINT, only SIGKILL ends it.
func (in *Inspector) Stopped(pid int) bool {
	p, err := process.NewProcessWithContext(in.withRoot(context.Background()), int32(pid))
	if err != nil {
		return false
	}
	st, err := p.StatusWithContext(in.withRoot(context.Background()))
	return err == nil && slices.Contains(st, process.Stop)
}

// Session is a verified java that leads its own session (after setsid).
type Session struct{ ID int }

// LeadsSession verifies p as Signal does; a java leading no session (it
// is in Steam's) has none to signal.
func (in *Inspector) LeadsSession(p Process, id Identity) (s Session, ok bool, err error) {
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		return Session{}, false, fmt.Errorf("checking the session of %d: %w", p.PID, ErrNotVerified)
	}
	defer unix.Close(fd)
	if now := in.Inspect(p.PID, id); now.Status != StatusRunning || now.CreateTime != p.CreateTime {
		return Session{}, false, fmt.Errorf("checking the session of %d: %w", p.PID, ErrNotVerified)
	}
	sid, err := unix.Getsid(p.PID)
	if err != nil {
		return Session{}, false, fmt.Errorf("checking the session of %d: %w", p.PID, ErrNotVerified)
	}
	if sid != p.PID {
		return Session{}, false, nil
	}
	return Session{ID: p.PID}, true, nil
}

// Signal signals the process group: its id cannot be reused while a member
// lives, so this stays safe after the leader exited.
func (s Session) Signal(sig syscall.Signal) (delivered bool, err error) {
	err = unix.Kill(-s.ID, sig)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("signalling session %d: %w", s.ID, err)
	}
	return true, nil
}
