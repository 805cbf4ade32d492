package remediate

import (
	"context"
	"fmt"
	"time"
)

// listeners returns the PIDs listening on port (0 for an owner that cannot
// be read).
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
		// A listener without an owner: a process on its way out lets go
		// within a second or two; one hidden from us (hidepid) never does.
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

func (e *Engine) listensOn(_ context.Context, pid, port int) bool { return listensOn(pid, port) }
