package remediate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// plan is what decide found: an Outcome, final unless it is an adopt or a
// restart (Result empty), and what applying it needs. decide only reads.
type plan struct {
	Outcome
	dep      steam.Deployment
	identity procid.Identity
	// events are journaled before the action (a death in a watch window, a give-up expired).
	policy        state.RestartPolicy
	policyChanged bool
	events        []Outcome
	outlived      bool // a restart outlived its watch window: count its success
	retry         bool // a failed start was counted: its retry is due at NextStart
	java          string
	hung          *procid.Process
	adopt         procid.Process
}

func (p *plan) final(a Action, r Result, reason Reason, detail string) plan {
	p.Outcome = p.Outcome.with(a, r, reason, detail)
	return *p
}

// decide, in order: row gone or not started (skip); the recorded PID serving
// (noop, or if unresponsive a restart once verified hung); the java under
// another PID (adopt); misconfigured; port_conflict; the policy; restart.
func (e *Engine) decide(ctx context.Context, id int64, t trigger) (plan, error) {
	p := plan{Outcome: Outcome{DeploymentID: id}}
	dep, err := e.registry.Deployment(ctx, id)
	if errors.Is(err, steam.ErrNotFound) {
		return p.final(ActionSkip, ResultSuccess, ReasonNotFound, ""), nil
	}
	if err != nil {
		return p, err
	}
	p.dep, p.Deployment, p.OldPID = dep, dep.Name, dep.PID
	if dep.State != steam.StateStarted {
		return p.final(ActionSkip, ResultSuccess, ReasonNotStarted, "state "+dep.State), nil
	}
	if p.policy, err = e.state.RestartPolicy(ctx, id); err != nil {
		return p, err
	}
	identity, identified := dep.Identity()
	p.identity = identity
	why := Reason(procid.StatusNoPID)
	if identified {
		proc := e.procs.Inspect(int(dep.PID), identity)
		why = Reason(proc.Status)
		switch proc.Status {
		case procid.StatusRunning:
			e.settle(&p, true)
			if !t.unresponsive() {
				return p.final(ActionNoop, ResultSuccess, ReasonRunning, ""), nil
			}
			if age := e.age(proc); age < e.cfg.StartGrace && !e.answered.has(id, proc) {
				return p.final(ActionNoop, ResultSuccess, ReasonStartGrace, fmt.Sprintf(
					"PID %d is %s old, younger than the start grace, and was never seen answering", proc.PID, age.Round(time.Second))), nil
			}
			p.hung = &proc
			if err := e.gate(ctx, &p); err != nil || p.Result != "" {
				return p, err
			}
			if p.java, err = e.javaPath(); err != nil {
				return p.final(ActionMisconfigured, ResultFailure, ReasonJavaMissing, err.Error()), nil
			}
			p.Reason, p.Detail = ReasonUnresponsive, fmt.Sprintf("PID %d does not answer %s", proc.PID, e.cfg.ProbePath)
			p.Action = ActionRestart
			return p, nil
		case procid.StatusUnknown:
			// Whatever runs there might be the deployment: starting another could make two.
			return p.final(ActionSkip, ResultFailure, ReasonUnverifiable, fmt.Sprint(proc.Err)), nil
		}
	}
	var listeners []int
	if dep.Problem != steam.ProblemPortInvalid {
		if listeners, err = e.listeners(ctx, int(dep.Port)); err != nil {
			return p, err
		}
	}
	if identified {
		found, err := e.findRunning(identity, listeners, dep)
		if err != nil {
			return p, err
		}
		if found.PID > 0 {
			p.adopt, p.NewPID = found, int64(found.PID)
			p.Action, p.Reason = ActionAdopt, why
			return p, nil
		}
		e.settle(&p, false)
	}
	if dep.Problem != "" {
		return p.final(ActionMisconfigured, ResultFailure, Reason(dep.Problem), ""), nil
	}
	if !identified {
		return p.final(ActionMisconfigured, ResultFailure, ReasonUnrecognised, ""), nil
	}
	if p.java, err = e.javaPath(); err != nil {
		return p.final(ActionMisconfigured, ResultFailure, ReasonJavaMissing, err.Error()), nil
	}
	if len(listeners) > 0 {
		return p.final(ActionPortConflict, ResultFailure, ReasonPortHeld,
			fmt.Sprintf("port %d held by %s", dep.Port, describePIDs(listeners))), nil
	}
	if err := e.gate(ctx, &p); err != nil || p.Result != "" {
		return p, err
	}
	p.Action, p.Reason = ActionRestart, why
	return p, nil
}

// gate sets a final outcome on p when the policy allows no start.
func (e *Engine) gate(ctx context.Context, p *plan) error {
	now := e.cfg.Now()
	if p.policy.GaveUp(now) {
		p.final(ActionSkip, ResultFailure, ReasonGaveUp, p.policy.GaveUpReason)
		return nil
	}
	if !p.policy.GaveUpUntil.IsZero() {
		// One more start; the failures kept, failing again gives up at once.
		p.policy.GaveUpUntil, p.policy.GaveUpReason, p.policyChanged = time.Time{}, "", true
		p.events = append(p.events, p.Outcome.with(ActionReset, ResultSuccess, ReasonExpired, ""))
	}
	if now.Before(p.policy.NextStart) {
		p.final(ActionSkip, ResultFailure, ReasonBackoff, "until "+p.policy.NextStart.Format(time.RFC3339))
		return nil
	}
	starts, err := e.state.StartsSince(ctx, p.DeploymentID, now.Add(-e.cfg.Policy.Window))
	if err != nil {
		return err
	}
	if starts >= e.cfg.Policy.MaxStarts {
		detail := fmt.Sprintf("%d starts within %s", starts, e.cfg.Policy.Window)
		p.policy = e.cfg.Policy.giveUp(p.policy, now, string(ReasonFlapping)+": "+detail)
		p.policyChanged = true
		p.final(ActionGiveUp, ResultFailure, ReasonFlapping, detail)
	}
	return nil
}

// settle brings the policy up to date with whether the java runs, closing a
// watch window a previous run left open.
func (e *Engine) settle(p *plan, running bool) {
	now := e.cfg.Now()
	pol := &p.policy
	if pol.StartingPID != 0 && !running {
		pol.StartingPID, p.policyChanged = 0, true
	}
	switch {
	case pol.ProbationPID != 0:
		over := !now.Before(pol.ProbationUntil)
		if e.procs.Inspect(int(pol.ProbationPID), p.identity).Status == procid.StatusRunning {
			if over {
				*pol, p.policyChanged, p.outlived = e.cfg.Policy.healthy(*pol), true, true
			}
			return
		}
		detail := ""
		if over {
			detail = "not seen running after its watch window"
		}
		failure := p.Outcome.with(ActionFailure, ResultFailure, ReasonDiedAfter, detail)
		failure.NewPID = pol.ProbationPID
		p.events = append(p.events, failure)
		p.events = append(p.events, e.fail(p, failure)...)
	case running && !pol.GaveUpUntil.IsZero():
		// Somebody brought a given-up deployment back; its alert must stop.
		reason := pol.GaveUpReason
		next := e.cfg.Policy.healthy(*pol)
		next.GaveUpUntil, next.GaveUpReason = time.Time{}, ""
		*pol, p.policyChanged = next, true
		p.events = append(p.events, p.Outcome.with(ActionReset, ResultSuccess, ReasonRunningAgain, "was given up: "+reason))
	case running && (pol.ConsecutiveFailures > 0 || !pol.NextStart.IsZero()):
		*pol, p.policyChanged = e.cfg.Policy.healthy(*pol), true
	}
}

// fail counts failure against p's policy and returns the give-up it causes,
// if any, to be journaled after it.
func (e *Engine) fail(p *plan, failure Outcome) []Outcome {
	now := e.cfg.Now()
	p.policy, p.policyChanged, p.retry = e.cfg.Policy.failed(p.policy, now, rand.Float64()), true, true
	if !p.policy.GaveUp(now) {
		return nil
	}
	gaveUp := failure.with(ActionGiveUp, ResultFailure, ReasonTooManyFails, p.policy.GaveUpReason)
	gaveUp.Duration = 0
	return []Outcome{gaveUp}
}

// failed is a failed start as the result of an action.
func (e *Engine) failed(p *plan, failure Outcome) result {
	return result{Outcome: failure, then: e.fail(p, failure)}
}

func (e *Engine) age(p procid.Process) time.Duration {
	return time.Since(time.Unix(0, int64(p.StartTime*1e9)))
}

// findRunning finds the deployment's java by its port, then its command
// line; of several the oldest, the others reported, never killed.
func (e *Engine) findRunning(identity procid.Identity, listeners []int, dep steam.Deployment) (procid.Process, error) {
	for _, pid := range listeners {
		if pid <= 0 {
			continue
		}
		if p := e.procs.Inspect(pid, identity); p.Status == procid.StatusRunning {
			return p, nil
		}
	}
	found, err := e.procs.Find(identity)
	if err != nil || len(found) == 0 {
		return procid.Process{}, err
	}
	oldest := found[0]
	for _, p := range found[1:] {
		if p.CreateTime < oldest.CreateTime {
			oldest = p
		}
	}
	if len(found) > 1 {
		e.logger.Warn("Deployment runs more than once; adopting the oldest process and leaving the others alone",
			"deployment_id", dep.ID, "deployment", dep.Name, "processes", len(found), "pid", oldest.PID)
	}
	return oldest, nil
}

func describePIDs(pids []int) string {
	var parts []string
	for _, p := range pids {
		if p <= 0 {
			parts = append(parts, "an unreadable process")
			continue
		}
		parts = append(parts, fmt.Sprintf("PID %d", p))
	}
	return strings.Join(parts, ", ")
}

// javaPath resolves the java at every start: a JDK installed later needs no restart.
func (e *Engine) javaPath() (string, error) {
	if e.cfg.JavaPath == "" {
		return exec.LookPath("java")
	}
	fi, err := os.Stat(e.cfg.JavaPath)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", e.cfg.JavaPath)
	}
	return e.cfg.JavaPath, nil
}
