package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// restart starts the deployment's java and, once it serves, records its PID.
// The started java is watched only once the result is journaled, so that a
// death in its window comes after its start in the journal.
func (e *Engine) restart(ctx context.Context, p *plan, t trigger) (result, error) {
	dep := p.dep
	now := e.cfg.Now()
	// Counted first: a start of a remediator killed meanwhile still counts.
	if err := e.state.RecordStart(ctx, dep.ID, now, now.Add(-e.cfg.Policy.Window)); err != nil {
		return result{Outcome: p.Outcome}, err
	}
	p.Action = ActionRestart
	failed := func(reason Reason, detail string) (result, error) {
		p.policy.StartingPID = 0
		return e.failed(p, p.Outcome.with(ActionRestart, ResultFailure, reason, detail)), nil
	}

	c, err := e.start(dep, p.java)
	if err != nil {
		return failed(ReasonStartError, err.Error())
	}
	p.NewPID = int64(c.pid)
	p.policy.StartingPID = int64(c.pid)
	_ = e.savePolicy(ctx, p.policy, &p.policy)
	e.logger.Info("Started deployment", "deployment_id", dep.ID, "deployment", dep.Name, "pid", c.pid,
		"port", dep.Port, "log", c.logPath)

	v := e.waitReady(ctx, c, int(dep.Port))
	switch {
	case v.abandoned:
		// Left running with StartingPID set: the next remediator resumes it.
		return result{Outcome: p.Outcome.with(ActionRestart, ResultFailure, ReasonAbandoned,
			"the remediator stopped; the process was left running")}, nil
	case !v.ready:
		if c.hasExited() {
			return failed(v.reason, v.detail)
		}
		e.logger.Info("Start failed; stopping its process", "deployment_id", dep.ID, "pid", c.pid, "reason", v.reason)
		sig, err := e.stopChild(ctx, c)
		if err != nil {
			e.logger.Error("Could not stop a failed start", "deployment_id", dep.ID, "pid", c.pid, "err", err)
			return failed(v.reason, v.detail+"; not stopped: "+err.Error())
		}
		return failed(v.reason, v.detail+"; stopped with "+sig)
	}
	readyAt := time.Now()
	e.answered.saw(dep.ID, e.procs.Inspect(c.pid, p.identity))
	e.logger.Debug("Deployment serves; recording its PID", "deployment_id", dep.ID, "pid", c.pid)

	// Serving: stopped only if Steam no longer wants the deployment.
	o := p.Outcome
	err = e.recordPID(ctx, *p, c.pid)
	switch {
	case errors.Is(err, steam.ErrNotFound) || errors.Is(err, steam.ErrNotStarted):
		return e.cancel(ctx, p, err, func() (string, error) { return e.stopChild(ctx, c) }), nil
	case err != nil:
		e.logger.Warn("New process serves but its PID could not be recorded; it keeps running and will be adopted",
			"deployment_id", dep.ID, "pid", c.pid, "err", err)
		o = o.with(ActionRestart, ResultFailure, ReasonNotRecorded, err.Error())
	default:
		o = o.with(ActionRestart, ResultSuccess, p.Reason, p.Detail)
		o.Duration = readyAt.Sub(t.queued) // a restart's duration ends at readiness
	}
	next := e.cfg.Policy.ready(p.policy, c.pid, e.cfg.Now(), e.cfg.WatchAfterReady)
	next.StartingPID = 0
	_ = e.savePolicy(ctx, next, &p.policy)
	return result{Outcome: o, watch: c}, nil
}

// recordPID compare-and-sets the PID, retrying while Steam holds its lock; a
// dead PID found instead is replaced, a live java of the deployment is not.
func (e *Engine) recordPID(ctx context.Context, p plan, pid int) error {
	// Abandoned when the engine shuts down: the next remediation adopts it.
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RecordTimeout)
	defer cancel()
	old := p.OldPID
	for range 3 {
		err := e.registry.SetPID(ctx, p.DeploymentID, old, int64(pid))
		if !errors.Is(err, steam.ErrPIDChanged) {
			return err
		}
		dep, err := e.registry.Deployment(ctx, p.DeploymentID)
		switch {
		case err != nil:
			return err
		case dep.PID == int64(pid):
			return nil
		case e.procs.Inspect(int(dep.PID), p.identity).Status == procid.StatusRunning:
			return fmt.Errorf("%s: the row now holds PID %d, which runs the deployment too", ReasonRowChanged, dep.PID)
		}
		e.logger.Info("Deployment's row changed while it was restarted; recording the new PID over the dead one",
			"deployment_id", p.DeploymentID, "row_pid", dep.PID, "pid", pid)
		old = dep.PID
	}
	return fmt.Errorf("%s: the row kept changing", ReasonRowChanged)
}
