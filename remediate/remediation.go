package remediate

// A remediation, top to bottom: lock the deployment, decide (decide.go),
// record what deciding found, act (restart.go, adopt.go, hung.go), record
// the result, and watch a started java through its window (watch.go).

import (
	"context"
	"fmt"
	"time"
)

// remediate runs one remediation; a transient error is journaled here and retried later.
func (e *Engine) remediate(ctx context.Context, id int64, t trigger) (Outcome, error) {
	o, err := e.remediateLocked(ctx, id, t)
	if err != nil {
		o = Outcome{DeploymentID: id, Deployment: o.Deployment, OldPID: o.OldPID}.
			with(ActionError, ResultFailure, ReasonTransient, err.Error())
		o.Detail += e.scheduleRetry(id, t)
		o.Duration = time.Since(t.queued)
		e.record(ctx, o, toJournal)
		return o, err
	}
	e.clearAttempts(id)
	if o.Reason == ReasonNotFound {
		_ = e.removeLock(id) // deleted from Steam: its lock file goes too
	}
	return o, nil
}

// remediateLocked decides again when a compare-and-set finds the row changed.
func (e *Engine) remediateLocked(ctx context.Context, id int64, t trigger) (Outcome, error) {
	unlock, err := e.lock(ctx, id)
	if err != nil {
		return Outcome{DeploymentID: id}, err
	}
	defer unlock()
	for range 3 {
		p, err := e.decide(ctx, id, t)
		if err == nil {
			err = e.commit(ctx, &p, t)
		}
		if err != nil {
			return p.Outcome, err
		}
		r, err := e.apply(ctx, &p, t)
		if err == nil {
			err = e.conclude(ctx, &p, &r, t)
		}
		if err != nil {
			return r.Outcome, err
		}
		if r.watch != nil {
			e.watch(r.watch, p.dep)
		}
		if !r.again {
			return r.Outcome, nil
		}
	}
	p := plan{Outcome: Outcome{DeploymentID: id}.with(ActionAdopt, ResultFailure, ReasonRowChanged,
		"the row kept changing while the deployment was remediated")}
	r := result{Outcome: p.Outcome}
	err = e.conclude(ctx, &p, &r, t)
	return r.Outcome, err
}

// result is what acting on a plan came to: all that recording it and going
// on need. An empty Action means nothing was done (the row changed first).
type result struct {
	Outcome
	then  []Outcome // what the outcome caused (a give-up), journaled after it
	again bool      // decide anew: the row changed, or a java that never answered was stopped
	watch *child    // a started java, watched through its window once its start is journaled
}

// apply acts on p; the policy changes it makes are saved when the result is concluded.
func (e *Engine) apply(ctx context.Context, p *plan, t trigger) (result, error) {
	switch p.Action {
	case ActionAdopt:
		return e.adoptRunning(ctx, p)
	case ActionRestart:
		if p.hung != nil {
			answering, err := e.stopHung(ctx, *p)
			if err != nil {
				return result{Outcome: p.Outcome}, err
			}
			if answering != "" {
				return result{Outcome: p.Outcome.with(ActionNoop, ResultSuccess, ReasonAnswering, answering)}, nil
			}
			if int64(p.hung.PID) == p.policy.ProbationPID {
				// Hung inside its watch window: a failed start, backed off as a crash.
				failure := p.Outcome.with(ActionFailure, ResultFailure, ReasonUnresponsive, p.Detail)
				failure.NewPID = int64(p.hung.PID)
				return e.failed(p, failure), nil
			}
		}
		return e.restart(ctx, p, t)
	}
	return result{Outcome: p.Outcome}, nil
}

// conclude records r: p's policy saved, then r's outcome and what it
// caused journaled, in that order. Its duration runs from the notification.
func (e *Engine) conclude(ctx context.Context, p *plan, r *result, t trigger) error {
	if r.Action == "" {
		return e.commit(ctx, p, t)
	}
	if r.Duration == 0 && !t.queued.IsZero() {
		r.Duration = time.Since(t.queued)
	}
	p.events = append(append(p.events, r.Outcome), r.then...)
	if err := e.commit(ctx, p, t); err != nil {
		return fmt.Errorf("recording %s %s (%s): %w", r.Action, r.Result, r.Why(), err)
	}
	return nil
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
	for _, ev := range p.events {
		e.record(ctx, ev, t.recording(ev))
		if ev.Action == ActionGiveUp {
			e.shoutGaveUp(ev)
		}
	}
	if p.retry && !p.policy.GaveUp(e.cfg.Now()) {
		e.retryAt(p.DeploymentID, p.policy.NextStart, t.alert)
	}
	p.policyChanged, p.outlived, p.retry, p.events = false, false, false, nil
	return nil
}
