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

// ErrNotVerified means a process was not signalled because it is no longer
// the one inspected: it exited, or its PID names another process.
var ErrNotVerified = errors.New("process no longer verified")

// Signal sends sig to p, found running as id's java, only if it still is
// that very process: it re-verifies p through a pidfd and signals through
// it, so a PID reused in between never receives the signal.
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

// Stopped reports whether pid is stopped (state T, as after SIGSTOP): it
// handles no SIGINT until continued, so only SIGKILL ends it.
func (in *Inspector) Stopped(pid int) bool {
	p, err := process.NewProcessWithContext(in.withRoot(context.Background()), int32(pid))
	if err != nil {
		return false
	}
	st, err := p.StatusWithContext(in.withRoot(context.Background()))
	return err == nil && slices.Contains(st, process.Stop)
}

// Session is the session of a verified java that leads its own (its
// session id is its PID, as after setsid): its children belong to it too.
type Session struct{ ID int }

// LeadsSession verifies p as Signal does and reports the session it leads;
// ok is false for a java that leads none, whose session (Steam's, say) must
// never be signalled.
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

// Signal sends sig to the session's process group, which setsid made and
// the leader's children join. Its id cannot name another group while one
// of its members lives, so it stays safe after the leader exited. delivered
// is false once no member is left.
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
