package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Down reports whether the deployment is (or, from a plan, would stay) down
// after this outcome: the remediation failed or was held back, or a dry run
// found something to do. A deployment Steam no longer wants running is not
// down.
func (o Outcome) Down() bool {
	return o.Result == ResultFailure || o.Result == ResultPlanned
}

// reconcile sweeps every deployment at once and then every
// ReconcileInterval until Shutdown: the safety net that heals deployments
// when Alertmanager cannot reach the remediator. Its sweeps run on the
// workers' context, so that Shutdown lets their remediations finish within
// its grace as it does the workers'; it begins no remediation after
// Shutdown was called. Each sweep's outcomes are journaled and logged by
// the sweep itself.
func (e *Engine) reconcile() {
	defer e.workers.Done()
	tick := time.NewTicker(e.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		_, err := e.sweep(e.workCtx, false, e.closing)
		switch {
		case errors.Is(err, errClosing) || e.workCtx.Err() != nil:
			return
		case err != nil:
			e.logger.Warn("Reconcile sweep could not list deployments", "err", err)
		}
		select {
		case <-e.closing:
			return
		case <-tick.C:
		}
	}
}

// WaitWatched waits until the watch window of every process this engine
// started has closed, or ctx ends, and returns outcomes (from Sweep or
// Remediate) with each successful restart whose process died within its
// window replaced by the failure journaled for it. A command that sweeps
// once and exits calls it, after the sweep, before it exits: a window left
// open is settled only by a later remediation, which cannot tell when the
// process died. No remediation may be in progress when it is called.
func (e *Engine) WaitWatched(ctx context.Context, outcomes []Outcome) ([]Outcome, error) {
	done := make(chan struct{})
	go func() {
		e.watchers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
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
		// Newest first: a failure of the process journaled after its
		// restart.
		for _, j := range es {
			if j.NewPID != o.NewPID {
				continue
			}
			if j.Action == ActionFailure {
				outcomes[i].Action, outcomes[i].Result, outcomes[i].Reason = j.Action, j.Result, j.Reason
				break
			}
			if j.Action == ActionRestart {
				break
			}
		}
	}
	return outcomes, err
}
