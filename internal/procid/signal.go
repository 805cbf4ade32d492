package procid

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotVerified means a process was not signalled because it is no longer
// the one that was inspected: it exited, or its PID now names another
// process.
var ErrNotVerified = errors.New("process no longer verified")

// Signal sends sig to p, a process Inspect or Find reported running as id's
// java, but only if it still is that very process. It holds a pidfd while it
// re-verifies the command line and the create time, and signals through that
// pidfd, so a PID reused in between can never receive the signal.
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
