package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
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
		rowCheck := time.NewTicker(rowCheckInterval)
		defer rowCheck.Stop()
		for {
			select {
			case <-e.watchCtx.Done():
				// The policy remembers the window; the next remediation closes it.
				return
			case <-t.C:
				e.closeWatch(c, dep, false)
				return
			case <-c.exited:
				e.closeWatch(c, dep, true)
				return
			case <-rowCheck.C:
				if e.stopIfSteamStopped(c, dep) {
					return
				}
			}
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
	p := watchedPlan(c, dep, pol)
	var r result // living through the window, or stopped by Steam: nothing to journal
	if !died || steamStopped(ctx, e.registry, dep.ID) != nil {
		p.policy, p.policyChanged, p.outlived = e.cfg.Policy.healthy(pol), true, !died
	} else {
		output := &logScanner{path: c.logPath, offset: c.offset}
		output.scan(true)
		detail := c.exitStatus()
		if output.last != "" {
			detail += " (" + output.last + ")"
		}
		r = e.failed(&p, p.Outcome.with(ActionFailure, ResultFailure, ReasonDiedAfter, detail))
	}
	if err := e.conclude(ctx, &p, &r, trigger{}); err != nil {
		// Nothing journaled: a remediation soon decides it from the stored policy.
		e.retryAt(dep.ID, e.cfg.Now().Add(e.cfg.RetryBackoff), AlertDown)
	}
}

// rowCheckInterval is how often a watched java's row is read: Steam may
// delete it in the window after stopping the PID it had read before ours
// was recorded, and nobody else would stop the java it leaves running.
const rowCheckInterval = time.Second

// stopIfSteamStopped stops the engine's own child, still in its watch
// window, whose row Steam deleted or stopped, and journals it as cancelled;
// it reports whether the watch is over.
func (e *Engine) stopIfSteamStopped(c *child, dep steam.Deployment) (over bool) {
	ctx := e.watchCtx
	if steamStopped(ctx, e.registry, dep.ID) == nil {
		return false
	}
	unlock, err := e.lock(ctx, dep.ID)
	if err != nil {
		return false
	}
	defer func() {
		unlock()
		if over {
			_ = e.removeLock(dep.ID)
		}
	}()
	pol, err := e.state.RestartPolicy(ctx, dep.ID)
	switch {
	case err != nil || c.hasExited():
		return false // an exit is closeWatch's to judge
	case pol.ProbationPID != int64(c.pid):
		return true // a remediation closed the window
	}
	err = steamStopped(ctx, e.registry, dep.ID)
	if err == nil {
		return false
	}
	e.logger.Info("Steam stopped the deployment in the watch window; stopping its process", "deployment_id", dep.ID, "pid", c.pid, "why", err)
	p := watchedPlan(c, dep, e.cfg.Policy.healthy(pol))
	p.policyChanged = true
	r := e.cancel(ctx, &p, err, func() (string, error) { return e.stopChild(ctx, c) })
	if err := e.conclude(ctx, &p, &r, trigger{}); err != nil {
		e.logger.Error("Could not record a cancelled watch", "deployment_id", dep.ID, "err", err)
	}
	return true
}

// watchedPlan is the plan of recording what became of c in its window.
func watchedPlan(c *child, dep steam.Deployment, pol state.RestartPolicy) plan {
	pid := int64(c.pid)
	return plan{Outcome: Outcome{DeploymentID: dep.ID, Deployment: dep.Name, OldPID: pid, NewPID: pid}, policy: pol}
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
// restart whose process died (or was cancelled) in its window replaced by
// that outcome. A command that sweeps once calls it before it exits.
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
			if j.Action == string(ActionFailure) || j.Action == string(ActionCancelled) {
				outcomes[i] = outcomes[i].with(Action(j.Action), Result(j.Result), Reason(j.Reason), j.Detail)
				break
			}
			if j.Action == string(ActionRestart) {
				break
			}
		}
	}
	return outcomes, err
}
