package remediate

import (
	"context"
	"fmt"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
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

// Policy is the restart policy: backoff after a failed start, and giving up.
type Policy struct {
	// InitialBackoff doubles with every consecutive failure, up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Jitter (a fraction; negative: none) keeps deployments that failed together from retrying together.
	Jitter float64
	// MaxFailures consecutive failures, or MaxStarts starts within Window
	// (flapping), give a deployment up for Window.
	MaxFailures int
	MaxStarts   int
	Window      time.Duration
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

// backoff is the wait after the failures-th failure; random in [0, 1).
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

func (p Policy) failed(pol state.RestartPolicy, now time.Time, random float64) state.RestartPolicy {
	pol.ConsecutiveFailures++
	pol.ProbationPID, pol.ProbationUntil = 0, time.Time{}
	pol.NextStart = now.Add(p.backoff(pol.ConsecutiveFailures, random))
	if pol.ConsecutiveFailures >= p.MaxFailures {
		pol = p.giveUp(pol, now, fmt.Sprintf("%d consecutive failed starts", pol.ConsecutiveFailures))
	}
	return pol
}

func (p Policy) giveUp(pol state.RestartPolicy, now time.Time, reason string) state.RestartPolicy {
	pol.GaveUpUntil, pol.GaveUpReason = now.Add(p.Window), reason
	pol.StartingPID = 0
	return pol
}

func (p Policy) ready(pol state.RestartPolicy, pid int, now time.Time, watch time.Duration) state.RestartPolicy {
	pol.ProbationPID, pol.ProbationUntil = int64(pid), now.Add(watch)
	return pol
}

// healthy forgets failures but not giving up: only an operator or Window lifts that.
func (p Policy) healthy(pol state.RestartPolicy) state.RestartPolicy {
	pol.ConsecutiveFailures, pol.NextStart = 0, time.Time{}
	pol.ProbationPID, pol.ProbationUntil = 0, time.Time{}
	return pol
}

const policySaves = 4

// savePolicy stores next as *pol, retrying while the state database is
// busy; failures journaled with an unsaved policy would be counted twice.
func (e *Engine) savePolicy(ctx context.Context, next state.RestartPolicy, pol *state.RestartPolicy) error {
	*pol = next
	ctx = context.WithoutCancel(ctx)
	var err error
	for try, wait := 1, time.Second; ; try, wait = try+1, 2*wait {
		if err = e.state.SaveRestartPolicy(ctx, next); err == nil {
			return nil
		}
		if try == policySaves {
			break
		}
		e.logger.Warn("Could not save restart policy; retrying", "deployment_id", next.DeploymentID, "in", wait, "err", err)
		time.Sleep(wait)
	}
	e.logger.Error("Could not save restart policy", "deployment_id", next.DeploymentID, "err", err)
	return err
}
