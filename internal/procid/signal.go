package procid

import (
	"errors"
	"fmt"
	"syscall"

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
