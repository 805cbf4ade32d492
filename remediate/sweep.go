package remediate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sweep remediates every deployment of Steam's registry, or with dryRun
// plans it, at most Config.Concurrency at once, and returns the outcomes in
// the order of the deployments' ids: the old cron job done right. It does
// not journal deployments with nothing to do. err is set when the registry
// cannot be listed or ctx ended before every deployment was begun (those
// left have an unjournaled ActionError outcome).
func (e *Engine) Sweep(ctx context.Context, dryRun bool) ([]Outcome, error) {
	return e.sweep(ctx, dryRun, nil)
}

var errClosing = errors.New("the engine is shutting down")

// sweep is Sweep, which also begins no remediation once stop is closed.
func (e *Engine) sweep(ctx context.Context, dryRun bool, stop <-chan struct{}) ([]Outcome, error) {
	ds, err := e.registry.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	if !dryRun {
		known := make(map[int64]bool, len(ds))
		for _, d := range ds {
			known[d.ID] = true
		}
		e.removeStaleLocks(known)
	}
	outcomes := make([]Outcome, len(ds))
	sem := make(chan struct{}, e.cfg.Concurrency)
	acquire := func() error {
		select { // checked first: select picks at random among ready cases
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errClosing
		default:
		}
		select {
		case sem <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errClosing
		}
	}
	var wg sync.WaitGroup
	for i, d := range ds {
		if err = acquire(); err != nil {
			for j, d := range ds[i:] {
				outcomes[i+j] = Outcome{DeploymentID: d.ID, Deployment: d.Name, OldPID: d.PID, DryRun: dryRun}.
					with(ActionError, ResultFailure, ReasonNotDone, err.Error())
			}
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if dryRun {
				outcomes[i], _ = e.Plan(ctx, d.ID)
			} else {
				outcomes[i], _ = e.remediate(ctx, d.ID, trigger{queued: time.Now(), sweep: true})
			}
		})
	}
	wg.Wait()
	return outcomes, err
}

// reconcile sweeps at once and then every ReconcileInterval until Shutdown:
// the safety net when Alertmanager cannot reach the remediator.
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

// removeStaleLocks removes the lock files of deployments no longer in
// Steam's registry, each under its own lock (see lock for why that is safe).
func (e *Engine) removeStaleLocks(known map[int64]bool) {
	entries, err := os.ReadDir(e.cfg.LockDir)
	if err != nil {
		return
	}
	for _, ent := range entries {
		idText, ok := strings.CutPrefix(ent.Name(), "deployment-")
		if !ok {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimSuffix(idText, ".lock"), 10, 64)
		if err != nil || known[id] {
			continue
		}
		if err := e.removeLock(id); err != nil {
			e.logger.Debug("Could not remove a stale lock file", "path", filepath.Join(e.cfg.LockDir, ent.Name()), "err", err)
		}
	}
}
