package remediate

import (
	"fmt"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

// Outcome is what one remediation of a deployment did (or, from Plan, would do).
type Outcome struct {
	DeploymentID int64
	Deployment   string // "" if the row could not be read
	Action       Action
	Result       Result
	Reason       Reason
	Detail       string // for people: what exactly happened
	// OldPID is the row's process_id before; NewPID the PID adopted, started or stopped.
	OldPID, NewPID int64
	// Duration runs from the notification to the outcome; for a restart, to readiness.
	Duration time.Duration
	DryRun   bool
}

// Why is the reason with its detail, as logs and tables show it.
func (o Outcome) Why() string {
	if o.Detail == "" {
		return string(o.Reason)
	}
	if o.Reason == "" {
		return o.Detail
	}
	return string(o.Reason) + ": " + o.Detail
}

func (o Outcome) String() string {
	s := fmt.Sprintf("deployment %d (%s): %s %s", o.DeploymentID, o.Deployment, o.Action, o.Result)
	if why := o.Why(); why != "" {
		s += " (" + why + ")"
	}
	return s
}

// Down reports whether the deployment is (or, from a plan, would stay) down
// after this outcome. A deployment Steam no longer wants running is not down.
func (o Outcome) Down() bool {
	return o.Result == ResultFailure || o.Result == ResultPlanned
}

func (o Outcome) with(a Action, r Result, reason Reason, detail string) Outcome {
	o.Action, o.Result, o.Reason, o.Detail = a, r, reason, detail
	return o
}

func (o Outcome) entry() state.Entry {
	return state.Entry{DeploymentID: o.DeploymentID, Deployment: o.Deployment, Action: string(o.Action),
		Result: string(o.Result), Reason: string(o.Reason), Detail: o.Detail, OldPID: o.OldPID, NewPID: o.NewPID,
		Duration: o.Duration}
}
