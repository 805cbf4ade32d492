package remediate

import (
	"sync"

	"github.com/steam-overseer/steam-overseer/internal/procid"
)

// answered remembers, per deployment, the java this remediator saw answer a
// probe: one it started or adopted and saw ready, or one its hung check
// heard. For that java the start grace is over, whatever its age. Kept in
// memory only: a new remediator waits the grace out for javas it never saw,
// which errs on the side of not stopping a java still loading its model.
type answered struct {
	mu    sync.Mutex
	procs map[int64]procKey
}

// procKey names one process: a PID reused by another process differs in CreateTime.
type procKey struct {
	pid        int
	createTime int64
}

func (a *answered) saw(id int64, p procid.Process) {
	if p.Status != procid.StatusRunning {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.procs == nil {
		a.procs = map[int64]procKey{}
	}
	a.procs[id] = procKey{p.PID, p.CreateTime}
}

func (a *answered) has(id int64, p procid.Process) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, ok := a.procs[id]
	return ok && k == procKey{p.PID, p.CreateTime}
}
