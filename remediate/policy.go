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

// Policy is the restart policy: the wait after a failed start, and when to
// stop starting a deployment altogether.
type Policy struct {
	// InitialBackoff is the wait after the first failed start; it doubles
	// with every further consecutive failure, up to MaxBackoff.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Jitter lengthens every wait by up to this fraction, so that deployments
	// that failed together do not retry together; negative means none.
	Jitter float64
	// MaxFailures consecutive failed starts give a deployment up.
	MaxFailures int
	// MaxStarts starts within Window give a deployment up: it is flapping.
	MaxStarts int
	// Window is the flapping window and how long giving up lasts.
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
	pol.StartingPID = 0
	return pol
}

// ready opens the watch window of a start whose process pid became ready at
// now.
func (p Policy) ready(pol state.RestartPolicy, pid int, now time.Time, watch time.Duration) state.RestartPolicy {
	pol.ProbationPID, pol.ProbationUntil = int64(pid), now.Add(watch)
	return pol
}

// healthy forgets past failures, not giving up: only an operator or the
// passing of Window lifts that.
func (p Policy) healthy(pol state.RestartPolicy) state.RestartPolicy {
	pol.ConsecutiveFailures, pol.NextStart = 0, time.Time{}
	pol.ProbationPID, pol.ProbationUntil = 0, time.Time{}
	return pol
}

// policySaves bounds the tries of a policy save: SQLITE_BUSY after the
// state database's busy timeout is worth a few more.
const policySaves = 4

// savePolicy stores next and makes it *pol, retrying while the state
// database is busy. An error is logged and returned: callers that count
// failures must not journal them unsaved, or they count them twice.
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
