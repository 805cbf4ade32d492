package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// watch follows a ready process through its watch window: dying there makes
// its start a failure; living through it makes it a counted success.
func (e *Engine) watch(c *child, dep steam.Deployment) {
	e.watchers.Add(1)
	go func() {
		defer e.watchers.Done()
		t := time.NewTimer(e.cfg.WatchAfterReady)
		defer t.Stop()
		// Steam deletes a row it stops after its java is gone: a start that
		// raced that stop serves a deployment nobody wants.
		poll := time.NewTicker(e.cfg.StopInterval)
		defer poll.Stop()
		for {
			select {
			case <-e.watchCtx.Done():
				// The policy remembers the window; the next remediation closes it.
			case <-t.C:
				e.closeWatch(c, dep, false)
			case <-c.exited:
				e.closeWatch(c, dep, true)
			case <-poll.C:
				if steamStopped(e.watchCtx, e.registry, dep.ID) == nil {
					continue
				}
				e.closeWatch(c, dep, false)
			}
			return
		}
	}()
}

func (e *Engine) closeWatch(c *child, dep steam.Deployment, died bool) {
	// A remediation of the same deployment may close it first; whoever
	// comes second finds it closed.
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
	p := plan{Outcome: Outcome{DeploymentID: dep.ID, Deployment: dep.Name, OldPID: int64(c.pid), NewPID: int64(c.pid)}, policy: pol}
	commit := func() {
		if err := e.commit(ctx, &p, trigger{}); err != nil {
			// Nothing journaled: a remediation soon decides it from the stored policy.
			e.retryAt(dep.ID, e.cfg.Now().Add(e.cfg.RetryBackoff), AlertDown)
		}
	}
	stopped := steamStopped(ctx, e.registry, dep.ID)
	if stopped != nil && !c.hasExited() {
		e.cancel(ctx, p, stopped, func() (string, error) { return e.stopChild(ctx, c) })
		died = true
	}
	if !died || stopped != nil {
		p.policy, p.policyChanged, p.outlived = e.cfg.Policy.healthy(pol), true, !died
		commit()
		return
	}
	output := &logScanner{path: c.logPath, offset: c.offset}
	output.scan(true)
	detail := c.exitStatus()
	if output.last != "" {
		detail += " (" + output.last + ")"
	}
	e.fail(&p, p.Outcome.with(ActionFailure, ResultFailure, ReasonDiedAfter, detail))
	commit()
}

// steamStopped says whether Steam no longer wants the deployment running
// (steam.ErrNotFound, steam.ErrNotStarted; nil otherwise): a process Steam
// stopped in its watch window did not fail.
func steamStopped(ctx context.Context, registry *steam.Registry, id int64) error {
	d, err := registry.Deployment(ctx, id)
	switch {
	case errors.Is(err, steam.ErrNotFound):
		return err
	case err == nil && d.State != steam.StateStarted:
		return steam.ErrNotStarted
	}
	return nil
}

// WaitWatched waits until the watch window of every process this engine
// started has closed, or ctx ends, and returns outcomes with each successful
// restart whose process died in its window replaced by that failure. A
// command that sweeps once calls it before it exits.
func (e *Engine) WaitWatched(ctx context.Context, outcomes []Outcome) ([]Outcome, error) {
	var err error
	select {
	case <-allDone(&e.watchers):
	case <-ctx.Done():
		err = ctx.Err()
	}
	outcomes = slices.Clone(outcomes)
	for i, o := range outcomes {
		if o.Action != ActionRestart || o.Result != ResultSuccess {
			continue
		}
		es, jerr := e.state.Journal(context.WithoutCancel(ctx), o.DeploymentID, 100)
		if jerr != nil {
			return outcomes, fmt.Errorf("reading the journal of deployment %d: %w", o.DeploymentID, jerr)
		}
		for _, j := range es { // newest first
			if j.NewPID != o.NewPID {
				continue
			}
			if j.Action == string(ActionFailure) {
				outcomes[i] = outcomes[i].with(ActionFailure, ResultFailure, Reason(j.Reason), j.Detail)
				break
			}
			if j.Action == string(ActionRestart) {
				break
			}
		}
	}
	return outcomes, err
}
