package remediate

// A remediation, top to bottom: lock the deployment, decide (decide.go),
// act (restart.go, adopt.go, hung.go), record (record.go), and watch a
// started java through its window (watch.go).

import (
	"context"
	"time"
)

// remediate runs one remediation and records its outcome; a transient error is retried later.
func (e *Engine) remediate(ctx context.Context, id int64, t trigger) (Outcome, error) {
	o, journaled, err := e.remediateLocked(ctx, id, t)
	if err == nil && o.Reason == ReasonNotFound {
		_ = e.removeLock(id) // deleted from Steam: its lock file goes too
	}
	if err != nil {
		o = Outcome{DeploymentID: id, Deployment: o.Deployment, OldPID: o.OldPID}.
			with(ActionError, ResultFailure, ReasonTransient, err.Error())
		o.Detail += e.scheduleRetry(id, t)
	} else {
		e.clearAttempts(id)
	}
	if !journaled {
		o.Duration = time.Since(t.queued)
	}
	switch {
	case journaled:
	case t.sweep && o.Result == ResultSuccess && (o.Action == ActionNoop || o.Action == ActionSkip):
		e.record(ctx, o, countOnly)
	default:
		e.record(ctx, o, toJournal)
	}
	return o, err
}

// remediateLocked decides again when a compare-and-set finds the row changed.
func (e *Engine) remediateLocked(ctx context.Context, id int64, t trigger) (o Outcome, journaled bool, err error) {
	unlock, err := e.lock(ctx, id)
	if err != nil {
		return Outcome{DeploymentID: id}, false, err
	}
	defer unlock()
	for range 3 {
		p, err := e.decide(ctx, id, t)
		if err != nil {
			return p.Outcome, false, err
		}
		o, journaled, again, err := e.apply(ctx, p, t)
		if !again {
			return o, journaled, err
		}
	}
	return Outcome{DeploymentID: id}.with(ActionAdopt, ResultFailure, ReasonRowChanged,
		"the row kept changing while the deployment was remediated"), false, nil
}

// apply commits p's policy and events, then acts; again: decide anew.
func (e *Engine) apply(ctx context.Context, p plan, t trigger) (o Outcome, journaled, again bool, err error) {
	if err := e.commit(ctx, &p, t); err != nil {
		return p.Outcome, false, false, err
	}
	switch p.Action {
	case ActionAdopt:
		return e.adoptRunning(ctx, p, t)
	case ActionRestart:
		if p.hung != nil {
			answering, err := e.stopHung(ctx, p)
			if err != nil {
				return p.Outcome, false, false, err
			}
			if answering != "" {
				return p.Outcome.with(ActionNoop, ResultSuccess, ReasonAnswering, answering), false, false, nil
			}
			if int64(p.hung.PID) == p.policy.ProbationPID {
				// Hung inside its watch window: a failed start, backed off as a crash.
				failure := p.Outcome.with(ActionFailure, ResultFailure, ReasonUnresponsive, p.Detail)
				failure.NewPID = int64(p.hung.PID)
				e.fail(&p, failure)
				if err := e.commit(ctx, &p, t); err != nil {
					return p.Outcome, false, false, err
				}
				return failure, true, false, nil
			}
		}
		o, err := e.restart(ctx, p, t)
		// An error before the start journaled nothing: the caller does.
		return o, err == nil, false, err
	case ActionGiveUp:
		e.shoutGaveUp(p.Outcome)
	}
	return p.Outcome, false, false, nil
}

// commit saves p's policy, then journals its events: unsaved, the next
// remediation would journal them again. A failed start's retry is scheduled.
func (e *Engine) commit(ctx context.Context, p *plan, t trigger) error {
	if p.policyChanged {
		if err := e.savePolicy(ctx, p.policy, &p.policy); err != nil {
			return err
		}
	}
	if p.outlived {
		e.record(ctx, p.Outcome.with(ActionRestart, ResultSuccess, "", ""), countOnly)
	}
	failed := false
	for _, ev := range p.events {
		e.record(ctx, ev, toJournal)
		switch ev.Action {
		case ActionGiveUp:
			e.shoutGaveUp(ev)
		case ActionFailure, ActionRestart, ActionAdopt:
			failed = failed || ev.Result == ResultFailure
		}
	}
	if failed && !p.policy.GaveUp(e.cfg.Now()) {
		e.retryAt(p.DeploymentID, p.policy.NextStart, t.alert)
	}
	p.policyChanged, p.outlived, p.events = false, false, nil
	return nil
}
