package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// restart starts the deployment's java, waits until it serves, records its
// PID and opens its watch window. Its outcome is journaled here, so that
// what it causes (a give-up, a death in the window) comes after it.
func (e *Engine) restart(ctx context.Context, p plan, t trigger) (Outcome, error) {
	dep := p.dep
	now := e.cfg.Now()
	// Counted before the start: a remediator killed meanwhile must not make
	// a start the flapping limit never sees.
	if err := e.state.RecordStart(ctx, dep.ID, now, now.Add(-e.cfg.Policy.Window)); err != nil {
		return p.Outcome, err
	}
	p.Action = ActionRestart
	failed := func(reason Reason, detail string) (Outcome, error) {
		o := p.Outcome.with(ActionRestart, ResultFailure, reason, detail)
		o.Duration = time.Since(t.queued)
		p.policy.StartingPID = 0
		e.fail(&p, o)
		if err := e.commit(ctx, &p, t); err != nil {
			return o, fmt.Errorf("recording failed start (%s): %w", o.Why(), err)
		}
		return o, nil
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
		// Shutting down: the process is left running and StartingPID set, so
		// that the next remediator resumes it at once.
		o := p.Outcome.with(ActionRestart, ResultFailure, ReasonAbandoned, "the remediator stopped; the process was left running")
		e.finish(ctx, o)
		return o, nil
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
	e.logger.Debug("Deployment serves; recording its PID", "deployment_id", dep.ID, "pid", c.pid)

	// From here on the process serves: it is stopped only if Steam no
	// longer wants the deployment.
	o := p.Outcome
	err = e.recordPID(ctx, p, c.pid)
	switch {
	case errors.Is(err, steam.ErrNotFound) || errors.Is(err, steam.ErrNotStarted):
		return e.cancel(ctx, p, err, func() (string, error) { return e.stopChild(ctx, c) }), nil
	case err != nil:
		e.logger.Warn("New process serves but its PID could not be recorded; it keeps running and will be adopted",
			"deployment_id", dep.ID, "pid", c.pid, "err", err)
		o = o.with(ActionRestart, ResultFailure, ReasonNotRecorded, err.Error())
		o.Duration = time.Since(t.queued)
	default:
		o = o.with(ActionRestart, ResultSuccess, p.Reason, p.Detail)
		o.Duration = readyAt.Sub(t.queued) // a restart's duration ends at readiness
		e.metrics.restartDuration.Observe(o.Duration.Seconds())
	}
	next := e.cfg.Policy.ready(p.policy, c.pid, e.cfg.Now(), e.cfg.WatchAfterReady)
	next.StartingPID = 0
	_ = e.savePolicy(ctx, next, &p.policy)
	e.finish(ctx, o)
	e.watch(c, dep)
	return o, nil
}

// recordPID writes the ready process's PID into the row by compare-and-set,
// retrying while Steam holds its lock. If the row holds another PID, it is
// read again: a dead PID there is replaced, a live process of the deployment
// is reported and left alone. ErrNotFound and ErrNotStarted come back as such.
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
