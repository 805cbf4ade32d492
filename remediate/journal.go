package remediate

import (
	"context"
	"time"
)

// finish journals o, counts it and logs it. A journal write that fails is
// retried in the background a few times before it is given up and counted.
func (e *Engine) finish(ctx context.Context, o Outcome) {
	e.countAction(o)
	if _, err := e.state.Record(context.WithoutCancel(ctx), o.entry()); err != nil {
		e.logger.Warn("Could not journal remediation; retrying", "deployment_id", o.DeploymentID, "action", o.Action, "err", err)
		e.journalLater(o)
	}
	attrs := []any{"deployment_id", o.DeploymentID, "deployment", o.Deployment, "action", o.Action,
		"result", o.Result, "reason", o.Reason, "detail", o.Detail, "old_pid", o.OldPID, "new_pid", o.NewPID,
		"duration", o.Duration}
	switch {
	case o.Action == ActionNoop || (o.Action == ActionSkip && o.Result == ResultSuccess):
		e.logger.Debug("Remediation done", attrs...)
	case o.Action == ActionGiveUp:
		// shoutGaveUp says it louder.
	case o.Action == ActionError:
		e.logger.Error("Remediation failed", attrs...)
	case o.Result == ResultFailure:
		e.logger.Warn("Remediation failed", attrs...)
	default:
		e.logger.Info("Remediation done", attrs...)
	}
}

// countAction counts o in steam_remediator_actions_total. A restart counts
// as a success only once it outlived its watch window (see commit), and a
// death inside the window as the restart's failure.
func (e *Engine) countAction(o Outcome) {
	a, r := o.Action, o.Result
	switch {
	case a == ActionRestart && r == ResultSuccess:
		return
	case a == ActionFailure:
		a = ActionRestart
	}
	e.metrics.actions.WithLabelValues(string(a), string(r)).Inc()
}

// journalAttempts bounds the background retries of a journal write.
const journalAttempts = 5

func (e *Engine) journalLater(o Outcome) {
	entry := o.entry()
	entry.Time = time.Now()
	e.watchers.Add(1)
	go func() {
		defer e.watchers.Done()
		wait := time.Second
		for attempt := 2; attempt <= journalAttempts; attempt++ {
			select {
			case <-e.watchCtx.Done():
				attempt = journalAttempts // one last try on the way out
			case <-time.After(wait):
			}
			_, err := e.state.Record(context.Background(), entry)
			if err == nil {
				return
			}
			if attempt == journalAttempts {
				e.metrics.journalFailures.Inc()
				e.logger.Error("Could not journal remediation", "deployment_id", o.DeploymentID, "action", o.Action, "err", err)
			}
			wait *= 2
		}
	}()
}

// Reset clears the restart policy's memory of a deployment and journals it.
func (e *Engine) Reset(ctx context.Context, id int64) error {
	unlock, err := e.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	pol, err := e.state.RestartPolicy(ctx, id)
	if err != nil {
		return err
	}
	if err := e.state.ResetRestartPolicy(ctx, id); err != nil {
		return err
	}
	o := Outcome{DeploymentID: id}.with(ActionReset, ResultSuccess, ReasonOperator, "")
	if pol.GaveUp(e.cfg.Now()) {
		o.Detail = "was given up: " + pol.GaveUpReason
	}
	if dep, err := e.registry.Deployment(ctx, id); err == nil {
		o.Deployment, o.OldPID = dep.Name, dep.PID
	}
	e.finish(ctx, o)
	return nil
}

func (e *Engine) shoutGaveUp(o Outcome) {
	e.logger.Error("Gave up restarting deployment; it stays down until the window passes or an operator runs `steam-overseer remediator reset`",
		"deployment_id", o.DeploymentID, "deployment", o.Deployment, "reason", o.Why(), "window", e.cfg.Policy.Window)
}
