package remediate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Defaults of Policy.
const (
	DefaultInitialBackoff = 10 * time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultJitter         = 0.2
	DefaultMaxFailures    = 5
	DefaultMaxStarts      = 10
	DefaultWindow         = time.Hour
)

// Policy is the restart policy: how long to wait after a failed start, and
// when to stop starting a deployment altogether. A start fails when its
// process is not ready in time, or dies within the watch window after it
// was.
type Policy struct {
	// InitialBackoff is the wait after the first failed start; it doubles
	// with every further consecutive failure, up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Jitter lengthens every wait by up to this fraction, at random, so
	// that deployments that failed together do not retry together.
	// Negative means none.
	Jitter float64
	// MaxFailures consecutive failed starts give a deployment up.
	MaxFailures int
	// MaxStarts starts within Window give a deployment up: it is flapping.
	MaxStarts int
	// Window is the flapping window, and how long a deployment stays given
	// up unless an operator resets it first.
	Window time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultInitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	}
	if p.MaxFailures <= 0 {
		p.MaxFailures = DefaultMaxFailures
	}
	if p.MaxStarts <= 0 {
		p.MaxStarts = DefaultMaxStarts
	}
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	return p
}

// backoff is the wait after the failures-th consecutive failed start;
// random, in [0, 1), picks the jitter.
func (p Policy) backoff(failures int, random float64) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < failures && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if p.Jitter > 0 {
		d += time.Duration(float64(d) * p.Jitter * random)
	}
	return d
}

// failed counts a failed start at now.
func (p Policy) failed(pol state.RestartPolicy, now time.Time, random float64) state.RestartPolicy {
	pol.ConsecutiveFailures++
	pol.ProbationPID, pol.ProbationUntil = 0, time.Time{}
	pol.NextStart = now.Add(p.backoff(pol.ConsecutiveFailures, random))
	if pol.ConsecutiveFailures >= p.MaxFailures {
		pol = p.giveUp(pol, now, fmt.Sprintf("%d consecutive failed starts", pol.ConsecutiveFailures))
	}
	return pol
}

// giveUp stops starting the deployment for Window.
func (p Policy) giveUp(pol state.RestartPolicy, now time.Time, reason string) state.RestartPolicy {
	pol.GaveUpUntil, pol.GaveUpReason = now.Add(p.Window), reason
	return pol
}

// ready opens the watch window of a start whose process pid became ready at
// now.
func (p Policy) ready(pol state.RestartPolicy, pid int, now time.Time, watch time.Duration) state.RestartPolicy {
	pol.ProbationPID, pol.ProbationUntil = int64(pid), now.Add(watch)
	return pol
}

// healthy forgets past failures: the last start stayed up through its watch
// window, or the deployment was found running. Giving up is not forgotten;
// only an operator or the passing of Window lifts it.
func (p Policy) healthy(pol state.RestartPolicy) state.RestartPolicy {
	pol.ConsecutiveFailures, pol.NextStart = 0, time.Time{}
	pol.ProbationPID, pol.ProbationUntil = 0, time.Time{}
	return pol
}

// settle brings the policy up to date before a decision. running says
// whether the deployment's java was found running.
//
// A start's watch window is normally closed by the goroutine that watches
// its process (watch). That goroutine dies with the engine, by a
// remediator's restart or at the end of `reconcile --once`, and the window
// is then closed here: the start succeeded if its process is seen running,
// and failed if it is gone. Once the window has passed, a process that is
// gone may have died after it, but nobody saw it alive there; it counts as
// failed all the same, lest a deployment that crashes soon after every
// start never be counted at all. Both the remediator (at the window's end,
// see Start) and `reconcile --once` (which waits out its windows) see to it
// that such a window is checked soon after it ends.
func (e *Engine) settle(ctx context.Context, pol *state.RestartPolicy, identity procid.Identity, dep steam.Deployment, running bool) {
	now := e.cfg.Now()
	switch {
	case pol.ProbationPID != 0:
		over := !now.Before(pol.ProbationUntil)
		if e.procs.Inspect(int(pol.ProbationPID), identity).Status == procid.StatusRunning {
			if over {
				e.savePolicy(ctx, e.cfg.Policy.healthy(*pol), pol)
			}
			return
		}
		reason := "died_after_ready"
		if over {
			reason += ": not seen running after its watch window"
		}
		e.countFailure(ctx, pol, Outcome{DeploymentID: dep.ID, Deployment: dep.Name, Action: ActionFailure,
			Result: ResultFailure, Reason: reason, OldPID: dep.PID, NewPID: pol.ProbationPID})
	case running && !pol.GaveUpUntil.IsZero():
		// Somebody (an operator, Steam's UI) brought a given-up deployment
		// back: there is nothing left to hold back, and its alert must not
		// go on firing over a healthy deployment. Should it die again, the
		// starts of the last hour still count towards flapping.
		reason := pol.GaveUpReason
		next := e.cfg.Policy.healthy(*pol)
		next.GaveUpUntil, next.GaveUpReason = time.Time{}, ""
		e.savePolicy(ctx, next, pol)
		e.finish(ctx, Outcome{DeploymentID: dep.ID, Deployment: dep.Name, Action: ActionReset,
			Result: ResultSuccess, Reason: "running_again: was given up (" + reason + ")", OldPID: dep.PID})
	case running && (pol.ConsecutiveFailures > 0 || !pol.NextStart.IsZero()):
		e.savePolicy(ctx, e.cfg.Policy.healthy(*pol), pol)
	}
}

// savePolicy stores next and makes it *pol. A policy that cannot be stored
// is logged; the remediation goes on with what it knows.
func (e *Engine) savePolicy(ctx context.Context, next state.RestartPolicy, pol *state.RestartPolicy) {
	*pol = next
	if err := e.state.SaveRestartPolicy(context.WithoutCancel(ctx), next); err != nil {
		e.logger.Error("Could not save restart policy", "deployment_id", next.DeploymentID, "err", err)
	}
}

// countFailure journals o, a failed start, and counts it: the deployment
// waits out its backoff, or is given up. When the engine's workers run, the
// retry after the backoff is scheduled, so that a deployment that failed
// once does not wait for Alertmanager's next notification.
func (e *Engine) countFailure(ctx context.Context, pol *state.RestartPolicy, o Outcome) {
	now := e.cfg.Now()
	e.savePolicy(ctx, e.cfg.Policy.failed(*pol, now, rand.Float64()), pol)
	e.finish(ctx, o)
	if pol.GaveUp(now) {
		e.gaveUp(o, pol.GaveUpReason)
		return
	}
	e.retryAt(o.DeploymentID, pol.NextStart)
}

// gaveUp journals and shouts that a deployment will not be started again
// until an operator resets it or the window passes.
func (e *Engine) gaveUp(o Outcome, reason string) {
	o.Action, o.Result, o.Reason, o.Duration = ActionGiveUp, ResultFailure, reason, 0
	e.finish(context.Background(), o)
	e.shoutGaveUp(o, reason)
}

func (e *Engine) shoutGaveUp(o Outcome, reason string) {
	e.logger.Error("Gave up restarting deployment; it stays down until the window passes or an operator runs `steam-overseer remediator reset`",
		"deployment_id", o.DeploymentID, "deployment", o.Deployment, "reason", reason, "window", e.cfg.Policy.Window)
}
