package remediate

import "github.com/steam-overseer/steam-overseer/internal/state"

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

// actionResults are the series of steam_remediator_actions_total that can
// occur, initialised to zero so that rates work from the first scrape.
var actionResults = []struct {
	action Action
	result Result
}{
	{ActionNoop, ResultSuccess},
	{ActionSkip, ResultSuccess},
	{ActionSkip, ResultFailure},
	{ActionAdopt, ResultSuccess},
	{ActionAdopt, ResultFailure},
	{ActionRestart, ResultSuccess},
	{ActionRestart, ResultFailure},
	{ActionPortConflict, ResultFailure},
	{ActionMisconfigured, ResultFailure},
	{ActionGiveUp, ResultFailure},
	{ActionReset, ResultSuccess},
	{ActionCancelled, ResultSuccess},
	{ActionCancelled, ResultFailure},
	{ActionError, ResultFailure},
}

// counted is how an outcome counts in steam_remediator_actions_total: a
// restart as a success only once it outlived its watch window, a death
// inside the window as the restart's failure.
func counted(a Action, r Result) (Action, Result, bool) {
	switch {
	case a == ActionRestart && r == ResultSuccess:
		return a, r, false
	case a == ActionFailure:
		return ActionRestart, r, true
	}
	return a, r, true
}
