package remediate

import (
	"fmt"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

// Action is what a remediation did; it is the journal's action column and the
// action label of steam_remediator_actions_total.
type Action string

const (
	ActionNoop          Action = state.ActionNoop    // the recorded PID serves as the deployment
	ActionSkip          Action = state.ActionSkip    // nothing started; Reason says why
	ActionAdopt         Action = state.ActionAdopt   // the deployment's java under another PID was recorded
	ActionRestart       Action = state.ActionRestart // a new java was started
	ActionFailure       Action = state.ActionFailure // a restart died inside its watch window
	ActionPortConflict  Action = "port_conflict"     // another process holds the port
	ActionMisconfigured Action = "misconfigured"     // war, jetty-runner.jar or java missing, or the row unrecognisable
	ActionGiveUp        Action = state.ActionGiveUp
	ActionReset         Action = state.ActionReset
	ActionCancelled     Action = "cancelled" // Steam stopped or deleted the row while its java started: it was stopped
	ActionError         Action = "error"     // the remediation could not be carried out
)

// Result is how an action ended.
type Result string

const (
	ResultSuccess Result = state.ResultSuccess
	ResultFailure Result = state.ResultFailure
	ResultPlanned Result = "planned" // a dry run would take the action
)

// Reason is a short, stable code; the human detail goes in Outcome.Detail.
type Reason string

const (
	ReasonRunning      Reason = "running"
	ReasonNotFound     Reason = "not_found"
	ReasonNotStarted   Reason = "not_started"
	ReasonUnverifiable Reason = "pid_unverifiable"
	ReasonUnresponsive Reason = "unresponsive"
	ReasonAnswering    Reason = "answering"
	ReasonStartGrace   Reason = "start_grace"
	ReasonPortHeld     Reason = "port_held"
	ReasonJavaMissing  Reason = "java_missing"
	ReasonUnrecognised Reason = "unrecognisable"
	ReasonBackoff      Reason = "backoff"
	ReasonGaveUp       Reason = "gave_up"
	ReasonFlapping     Reason = "flapping"
	ReasonTooManyFails Reason = "consecutive_failures"
	ReasonStartError   Reason = "start_error"
	ReasonNotReady     Reason = "not_ready"
	ReasonExited       Reason = "exited"
	ReasonAddressInUse Reason = "address_in_use"
	ReasonFailedLine   Reason = "failed"
	ReasonDeployFailed Reason = "deploy_failed"
	ReasonNotServing   Reason = "not_serving"
	ReasonDiedAfter    Reason = "died_after_ready"
	ReasonRowChanged   Reason = "row_changed"
	ReasonRowStopped   Reason = "row_stopped"
	ReasonRowDeleted   Reason = "row_deleted"
	ReasonNotRecorded  Reason = "pid_not_recorded"
	ReasonAbandoned    Reason = "abandoned"
	ReasonOperator     Reason = "operator"
	ReasonExpired      Reason = "give_up_expired"
	ReasonRunningAgain Reason = "running_again"
	ReasonTransient    Reason = "transient"
	ReasonNotDone      Reason = "not_remediated"
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
