package remediate

import (
	"context"
	"errors"
	"fmt"

	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// adoptRunning records the deployment's java found under another PID, once
// it answers its probe: a java that never does is stopped and the
// deployment decided again (it then starts afresh).
func (e *Engine) adoptRunning(ctx context.Context, p *plan) (result, error) {
	proc := p.adopt
	v := e.waitServing(ctx, proc, p.identity, int(p.dep.Port))
	switch {
	case v.abandoned:
		return result{Outcome: p.Outcome.with(ActionAdopt, ResultFailure, ReasonAbandoned,
			"the remediator stopped before the process answered")}, nil
	case !v.ready:
		o := p.Outcome.with(ActionAdopt, ResultFailure, v.reason, v.detail)
		if !v.gone {
			sig, err := e.stopVerified(ctx, proc, p.identity)
			if err != nil {
				o.Detail += "; not stopped: " + err.Error()
				return result{Outcome: o}, nil
			}
			o.Detail += "; stopped with " + sig
		}
		if int64(proc.PID) == p.policy.StartingPID {
			// Our own interrupted start that never served: a failed start.
			p.policy.StartingPID = 0
			return e.failed(p, o), nil
		}
		return result{Outcome: o, again: true}, nil
	}
	e.answered.saw(p.DeploymentID, proc)
	err := e.registry.SetPID(ctx, p.DeploymentID, p.OldPID, p.NewPID)
	switch {
	case errors.Is(err, steam.ErrPIDChanged):
		e.logger.Info("Deployment's row changed while adopting its process; checking again",
			"deployment_id", p.DeploymentID, "pid", p.NewPID, "err", err)
		return result{again: true}, nil
	case errors.Is(err, steam.ErrNotFound) || errors.Is(err, steam.ErrNotStarted):
		return e.cancel(ctx, p, err, func() (string, error) { return e.stopVerified(ctx, proc, p.identity) }), nil
	case err != nil:
		return result{Outcome: p.Outcome}, fmt.Errorf("adopting PID %d: %w", p.NewPID, err)
	}
	next := e.cfg.Policy.healthy(p.policy)
	if int64(proc.PID) == p.policy.StartingPID {
		// An interrupted start of ours: it gets the watch window it never had.
		next = e.cfg.Policy.ready(p.policy, proc.PID, e.cfg.Now(), e.cfg.WatchAfterReady)
	}
	next.StartingPID = 0
	_ = e.savePolicy(ctx, next, &p.policy)
	return result{Outcome: p.Outcome.with(ActionAdopt, ResultSuccess, p.Reason, fmt.Sprintf("PID %d serves", proc.PID))}, nil
}

// cancel handles a row Steam stopped or deleted while its java started or
// was adopted: the java is stopped, so that no process holds the port of a
// deployment Steam no longer runs, and the outcome journaled as cancelled.
func (e *Engine) cancel(ctx context.Context, p *plan, cause error, stop func() (string, error)) result {
	reason := ReasonRowStopped
	if errors.Is(cause, steam.ErrNotFound) {
		reason = ReasonRowDeleted
	}
	o := p.Outcome.with(ActionCancelled, ResultSuccess, reason, "")
	sig, err := stop()
	if err != nil {
		o.Result, o.Detail = ResultFailure, fmt.Sprintf("PID %d not stopped: %v", p.NewPID, err)
	} else {
		o.Detail = fmt.Sprintf("PID %d stopped with %s", p.NewPID, sig)
	}
	if p.policy.StartingPID != 0 {
		p.policy.StartingPID = 0
		_ = e.savePolicy(ctx, p.policy, &p.policy)
	}
	return result{Outcome: o}
}
