package remediate

import (
	"context"
	"fmt"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
)

// stopHung verifies, for itself, that the recorded java is hung, then stops
// it. The process must still be the one decided on (identity re-checked by
// procid through a pidfd when signalled), past its start grace, and fail
// HungProbes probes in a row spread over at least HungAfter. Any answer
// means it is alive: answering then says why nothing was done.
func (e *Engine) stopHung(ctx context.Context, p plan) (answering string, err error) {
	proc := *p.hung
	// The probes start HungAfter apart in all: a timeout does not stretch it.
	gap := e.cfg.HungAfter / time.Duration(max(e.cfg.HungProbes-1, 1))
	begin := time.Now()
	for i := range e.cfg.HungProbes {
		if i > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Until(begin.Add(time.Duration(i) * gap))):
			}
		}
		now := e.procs.Inspect(proc.PID, p.identity)
		if now.Status != procid.StatusRunning || now.CreateTime != proc.CreateTime {
			return "", nil // gone by itself: start it
		}
		if e.probe(ctx, int(p.dep.Port)).Success {
			return fmt.Sprintf("PID %d answered probe %d of %d", proc.PID, i+1, e.cfg.HungProbes), nil
		}
	}
	e.logger.Warn("Deployment does not answer; stopping it", "deployment_id", p.DeploymentID,
		"deployment", p.Deployment, "pid", proc.PID, "probes", e.cfg.HungProbes, "over", e.cfg.HungAfter)
	sig, err := e.stopVerified(ctx, proc, p.identity)
	if err != nil {
		return "", fmt.Errorf("stopping unresponsive PID %d: %w", proc.PID, err)
	}
	e.logger.Info("Stopped unresponsive deployment", "deployment_id", p.DeploymentID, "pid", proc.PID, "signal", sig)
	return "", nil
}
