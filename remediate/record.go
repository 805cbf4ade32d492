package remediate

import (
	"context"
	"time"
)

// recording says what record does with an outcome.
type recording int

const (
	toJournal recording = iota
	// countOnly: a sweep's noop (journaling it would bury the real actions),
	// a restart that outlived its watch window (journaled at its start).
	countOnly
)

func (t trigger) recording(o Outcome) recording {
	if t.sweep && o.Result == ResultSuccess && (o.Action == ActionNoop || o.Action == ActionSkip) {
		return countOnly
	}
	return toJournal
}

// record is the one place an outcome is journaled, counted and logged. A
// journal write that fails is retried in the background.
func (e *Engine) record(ctx context.Context, o Outcome, how recording) {
	if how == countOnly {
		e.metrics.actions.WithLabelValues(string(o.Action), string(o.Result)).Inc()
		return
	}
	if a, r, ok := counted(o.Action, o.Result); ok {
		e.metrics.actions.WithLabelValues(string(a), string(r)).Inc()
	}
	if o.Action == ActionRestart && o.Result == ResultSuccess {
		e.metrics.restartDuration.Observe(o.Duration.Seconds())
	}
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

func (e *Engine) shoutGaveUp(o Outcome) {
	e.logger.Error("Gave up restarting deployment; it stays down until the window passes or an operator runs `steam-overseer remediator reset`",
		"deployment_id", o.DeploymentID, "deployment", o.Deployment, "reason", o.Why(), "window", e.cfg.Policy.Window)
}
