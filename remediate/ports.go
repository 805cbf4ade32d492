package remediate

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// listeners returns the PIDs listening on port, 0 for an owner that cannot
// be read. A listener whose owner is on its way out lets go within a second
// or two, so an unknown owner is asked about again for a while; one hidden
// from us (hidepid) never shows and stays 0.
func (e *Engine) listeners(ctx context.Context, port int) ([]int, error) {
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		pids, err := e.procs.Listeners(ctx, port)
		if err != nil {
			return nil, fmt.Errorf("finding the owner of port %d: %w", port, err)
		}
		if !slices.Contains(pids, 0) || wait > 1280*time.Millisecond {
			return pids, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}
