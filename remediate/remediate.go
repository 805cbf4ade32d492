// Package remediate brings dead Steam deployments back. For one deployment
// it decides, from Steam's row and the live processes, whether there is
// nothing to do, whether the deployment's java runs under a PID the row does
// not know (adopt it), or whether to start it again exactly as Steam does;
// a start counts only once the service answers /ping, and only then is its
// PID written into Steam's row, by compare-and-set.
//
// It is built to be safer than a process supervisor: the remediation of a
// deployment holds a lock file, so two remediators never start it twice; no
// process is signalled that is not the very one it started; a port held by
// anything else is left alone; and a restart policy kept in the state
// database (backoff, giving up) stops a deployment that cannot start from
// being started forever, across restarts of the remediator too.
//
// The Engine serves two callers: Alertmanager's webhook, through Enqueue and
// a pool of workers, and sweeps over all deployments (reconcile), through
// Sweep (built on the synchronous Remediate and the side-effect-free Plan),
// once or periodically beside the workers.
package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Actions an Outcome reports. They are the journal's action column and the
// action label of steam_remediator_actions_total.
const (
	// ActionNoop: the recorded PID is the deployment's running java.
	ActionNoop = state.ActionNoop
	// ActionSkip: nothing was started; Reason says why (the row is gone or
	// not started, backoff, given up, the PID cannot be read).
	ActionSkip = state.ActionSkip
	// ActionAdopt: the deployment's java runs under another PID, which was
	// written into the row.
	ActionAdopt = state.ActionAdopt
	// ActionRestart: a new java was started.
	ActionRestart = state.ActionRestart
	// ActionFailure: a restart journaled as a success died within the watch
	// window that follows readiness, so it counts as a failed start.
	ActionFailure = state.ActionFailure
	// ActionPortConflict: the deployment's port is held by another process,
	// which is left alone.
	ActionPortConflict = "port_conflict"
	// ActionMisconfigured: the war, jetty-runner.jar or java is missing, or
	// the row cannot be recognised (steam.Deployment.Problem).
	ActionMisconfigured = "misconfigured"
	// ActionGiveUp: the restart policy stopped starting the deployment.
	ActionGiveUp = state.ActionGiveUp
	// ActionReset: the restart policy's memory of the deployment was cleared.
	ActionReset = state.ActionReset
	// ActionError: the remediation could not be carried out (Steam's or the
	// state database unreadable, the lock unobtainable).
	ActionError = "error"
)

// Results an Outcome reports.
const (
	// ResultSuccess: the deployment runs, or needs nothing.
	ResultSuccess = state.ResultSuccess
	// ResultFailure: the deployment stays down for now.
	ResultFailure = state.ResultFailure
	// ResultPlanned: a dry run (Plan) would take the action.
	ResultPlanned = "planned"
)

// Outcome is what one remediation of a deployment did (or, from Plan, would
// do).
type Outcome struct {
	DeploymentID int64
	Deployment   string // the deployment's name, "" if its row could not be read
	Action       string
	Result       string
	// Reason is a short code, sometimes followed by ": " and details.
	Reason string
	// OldPID is the row's process_id before; NewPID the PID adopted or
	// started (0 if none).
	OldPID, NewPID int64
	// Duration runs from the notification (or the call) to the outcome; for
	// a restart, to readiness.
	Duration time.Duration
	DryRun   bool
}

func (o Outcome) String() string {
	s := fmt.Sprintf("deployment %d (%s): %s %s", o.DeploymentID, o.Deployment, o.Action, o.Result)
	if o.Reason != "" {
		s += " (" + o.Reason + ")"
	}
	return s
}

// Defaults of Config.
const (
	DefaultConcurrency     = 4
	DefaultStartTimeout    = 120 * time.Second
	DefaultStopTimeout     = 10 * time.Second // Steam's SIGINT phase
	DefaultStopInterval    = time.Second      // Steam's pause between two SIGINTs
	DefaultWatchAfterReady = 60 * time.Second
	DefaultRecordTimeout   = time.Minute
)

// Config is how an Engine remediates.
type Config struct {
	// Home is the Steam home whose deployments are remediated.
	Home steam.Home
	// State is the state database (journal and restart policy), open
	// read-write.
	State *state.DB
	// LockDir holds a lock file per deployment; "" means
	// steam-overseer.locks beside Steam's database, so that every
	// remediator of one Steam home shares them whatever its --state.path.
	LockDir string
	// JavaPath is the java started; "" means "java" found on PATH at each
	// start. Whatever the path, the process's argv[0] is "java", as Steam's.
	JavaPath string
	// JavaOpts go between java and -jar. Each must start with "-", as the
	// JVM's own options do (it is how a deployment's java is recognised).
	JavaOpts []string
	// Concurrency is how many deployments the workers remediate at once;
	// 0 means DefaultConcurrency.
	Concurrency int
	// StartTimeout is how long a started java has to answer /ping.
	StartTimeout time.Duration
	// StopTimeout and StopInterval: a failed start's process is sent SIGINT
	// every StopInterval for StopTimeout, then SIGKILL, as Steam stops one.
	StopTimeout  time.Duration
	StopInterval time.Duration
	// WatchAfterReady is how long a ready process must live for its start
	// to count as successful.
	WatchAfterReady time.Duration
	// RecordTimeout bounds the retries of writing a new PID into Steam's
	// row while Steam holds its lock.
	RecordTimeout time.Duration
	// ReconcileInterval, if positive, makes Start also sweep every
	// deployment at once and then this often (see Sweep), until Shutdown.
	ReconcileInterval time.Duration
	// Policy is the restart policy; zero fields take their defaults.
	Policy Policy
	// Now is the clock of the restart policy's arithmetic (backoff, giving
	// up, watch windows); nil means time.Now. Everything else runs on real
	// time.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.LockDir == "" {
		c.LockDir = filepath.Join(filepath.Dir(c.Home.DBPath()), "steam-overseer.locks")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&c.StartTimeout, DefaultStartTimeout)
	set(&c.StopTimeout, DefaultStopTimeout)
	set(&c.StopInterval, DefaultStopInterval)
	set(&c.WatchAfterReady, DefaultWatchAfterReady)
	set(&c.RecordTimeout, DefaultRecordTimeout)
	c.Policy = c.Policy.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Engine remediates the deployments of one Steam home. The webhook feeds it
// through Start, Enqueue and Shutdown, and Start may sweep periodically too;
// a single sweep calls Remediate, Plan or Sweep directly, without Start.
// Either way, Shutdown ends the goroutines that watch restarted processes
// through their first minute.
type Engine struct {
	cfg      Config
	logger   *slog.Logger
	registry *steam.Registry
	procs    *procid.Inspector
	state    *state.DB
	metrics  *metrics

	// The queue (queue.go).
	mu       sync.Mutex
	cond     *sync.Cond
	jobs     map[int64]*job // queued or being remediated
	queue    []int64
	started  bool
	closed   bool
	closing  chan struct{} // closed by Shutdown: begin no more work
	retries  map[int64]*time.Timer
	workCtx  context.Context
	stopWork context.CancelFunc
	workers  sync.WaitGroup
	// watchCtx ends the watchers of ready processes.
	watchCtx  context.Context
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
}

// New returns an engine. Its metrics are registered on reg, which may be nil
// for callers that publish none (a dry run, the reset command).
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	if cfg.Home.Dir == "" {
		return nil, errors.New("remediate: no Steam home")
	}
	if cfg.State == nil {
		return nil, errors.New("remediate: no state database")
	}
	for _, o := range cfg.JavaOpts {
		if !strings.HasPrefix(o, "-") {
			return nil, fmt.Errorf("remediate: java option %q does not start with \"-\"", o)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	procs, err := procid.NewInspector("")
	if err != nil {
		return nil, fmt.Errorf("remediate: %w", err)
	}
	e := &Engine{
		cfg:      cfg,
		logger:   logger,
		registry: steam.NewRegistry(cfg.Home),
		procs:    procs,
		state:    cfg.State,
		jobs:     map[int64]*job{},
		retries:  map[int64]*time.Timer{},
		closing:  make(chan struct{}),
	}
	e.cond = sync.NewCond(&e.mu)
	e.workCtx, e.stopWork = context.WithCancel(context.Background())
	e.watchCtx, e.stopWatch = context.WithCancel(context.Background())
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if e.metrics, err = newMetrics(e, reg); err != nil {
		return nil, err
	}
	return e, nil
}

// Remediate remediates one deployment now and returns what it did. It takes
// the deployment's lock first, so it may run beside the workers and beside
// other remediators. err is set when the remediation could not be carried
// out; the Outcome (ActionError) is journaled all the same.
func (e *Engine) Remediate(ctx context.Context, id int64) (Outcome, error) {
	return e.remediate(ctx, id, time.Now(), false)
}

// Plan decides what Remediate would do now, and does none of it: no lock,
// no start, no write to Steam's database or the state database. An action
// that would change something comes back with ResultPlanned.
func (e *Engine) Plan(ctx context.Context, id int64) (Outcome, error) {
	begin := time.Now()
	d, err := e.decide(ctx, id, true)
	d.Duration = time.Since(begin)
	d.DryRun = true
	if err != nil {
		d.Action, d.Result, d.Reason = ActionError, ResultFailure, err.Error()
	}
	return d.Outcome, err
}

// remediate is Remediate for a notification queued at queued. A sweep does
// not journal the deployments it finds with nothing to do (running, or not
// started in Steam): a periodic sweep over every deployment would bury the
// journal's real actions under them. They are counted all the same.
func (e *Engine) remediate(ctx context.Context, id int64, queued time.Time, sweep bool) (Outcome, error) {
	o, err := e.remediateLocked(ctx, id, queued)
	if err != nil {
		o = outcome{Outcome: Outcome{DeploymentID: id, Deployment: o.Deployment, OldPID: o.OldPID,
			Action: ActionError, Result: ResultFailure, Reason: err.Error()}}
	}
	if !o.journaled {
		o.Duration = time.Since(queued)
	}
	switch {
	case o.journaled:
	case sweep && o.Result == ResultSuccess && (o.Action == ActionNoop || o.Action == ActionSkip):
		e.metrics.actions.WithLabelValues(o.Action, o.Result).Inc()
	default:
		e.finish(ctx, o.Outcome)
	}
	return o.Outcome, err
}

// outcome is an Outcome with what only the engine needs.
type outcome struct {
	Outcome
	// journaled: the outcome was journaled where it happened, so that
	// what it caused (a give-up, a death in the watch window) comes after
	// it in the journal.
	journaled bool
}

func (e *Engine) remediateLocked(ctx context.Context, id int64, queued time.Time) (outcome, error) {
	unlock, err := e.lock(ctx, id)
	if err != nil {
		return outcome{}, err
	}
	defer unlock()
	// A compare-and-set that finds the row changed sends the remediation
	// back to the start: somebody else acted, and the row must be read
	// again. Three rounds outlast any sane race.
	for range 3 {
		d, err := e.decide(ctx, id, false)
		if err != nil {
			return outcome{Outcome: d.Outcome}, err
		}
		switch d.Action {
		case ActionAdopt:
			err := e.registry.SetPID(ctx, id, d.OldPID, d.NewPID)
			if errors.Is(err, steam.ErrPIDChanged) || errors.Is(err, steam.ErrNotFound) {
				e.logger.Info("Deployment's row changed while adopting its process; checking again",
					"deployment_id", id, "pid", d.NewPID, "err", err)
				continue
			}
			if err != nil {
				return outcome{Outcome: d.Outcome}, fmt.Errorf("adopting PID %d: %w", d.NewPID, err)
			}
			e.settle(ctx, &d.policy, d.identity, d.deployment, true)
			d.Result = ResultSuccess
			return outcome{Outcome: d.Outcome}, nil
		case ActionRestart:
			return e.restart(ctx, d, queued)
		default:
			return outcome{Outcome: d.Outcome}, nil
		}
	}
	return outcome{Outcome: Outcome{DeploymentID: id, Action: ActionAdopt, Result: ResultFailure,
		Reason: "row_changed: the row kept changing while adopting"}}, nil
}

// decision is what decide found: an Outcome, final unless its Action is
// ActionAdopt or ActionRestart, and what acting on it needs.
type decision struct {
	Outcome
	deployment steam.Deployment
	identity   procid.Identity
	policy     state.RestartPolicy
	java       string
}

func (d decision) with(action, result, reason string) decision {
	d.Action, d.Result, d.Reason = action, result, reason
	return d
}

// decide is the remediation's decision, shared by Remediate and Plan, in
// this order: the row gone or not started (skip); the recorded PID running
// as the deployment (noop); the deployment's java under another PID (adopt);
// the deployment unstartable (misconfigured) or its port taken
// (port_conflict); the restart policy's gate (skip for backoff or giving up,
// give_up when flapping); otherwise restart. With dryRun it writes nothing,
// not even the policy's bookkeeping.
func (e *Engine) decide(ctx context.Context, id int64, dryRun bool) (decision, error) {
	d := decision{Outcome: Outcome{DeploymentID: id}}
	dep, err := e.registry.Deployment(ctx, id)
	if errors.Is(err, steam.ErrNotFound) {
		return d.with(ActionSkip, ResultSuccess, "not_found"), nil
	}
	if err != nil {
		return d, err
	}
	d.deployment, d.Deployment, d.OldPID = dep, dep.Name, dep.PID
	if dep.State != steam.StateStarted {
		return d.with(ActionSkip, ResultSuccess, "state_"+dep.State), nil
	}
	if d.policy, err = e.state.RestartPolicy(ctx, id); err != nil {
		return d, err
	}
	// why is what became of the recorded PID: the reason an adoption or a
	// restart gives.
	why := ""
	planned := func(action string) decision {
		if dryRun {
			return d.with(action, ResultPlanned, why)
		}
		return d.with(action, "", why)
	}

	identity, identified := dep.Identity()
	if identified {
		d.identity = identity
		p := e.procs.Inspect(int(dep.PID), identity)
		why = string(p.Status)
		switch p.Status {
		case procid.StatusRunning:
			if !dryRun {
				e.settle(ctx, &d.policy, identity, dep, true)
			}
			return d.with(ActionNoop, ResultSuccess, "running"), nil
		case procid.StatusUnknown:
			// Whatever runs there might be the deployment: starting
			// another could make two.
			return d.with(ActionSkip, ResultFailure, fmt.Sprintf("pid_unverifiable: %v", p.Err)), nil
		}
	}
	var listeners []int
	if dep.Problem != steam.ProblemPortInvalid {
		if listeners, err = e.listeners(ctx, int(dep.Port)); err != nil {
			return d, err
		}
	}
	if identified {
		pid, err := e.findRunning(identity, listeners, dep)
		if err != nil {
			return d, err
		}
		if pid > 0 {
			d = planned(ActionAdopt)
			d.NewPID = int64(pid)
			return d, nil
		}
	}

	// Nothing of this deployment runs.
	if !dryRun && identified {
		e.settle(ctx, &d.policy, identity, dep, false)
	}
	if dep.Problem != "" {
		return d.with(ActionMisconfigured, ResultFailure, dep.Problem), nil
	}
	if !identified {
		return d.with(ActionMisconfigured, ResultFailure, "unrecognisable"), nil
	}
	if d.java, err = e.javaPath(); err != nil {
		return d.with(ActionMisconfigured, ResultFailure, "java_missing: "+err.Error()), nil
	}
	if len(listeners) > 0 {
		return d.with(ActionPortConflict, ResultFailure, fmt.Sprintf("port %d held by %s", dep.Port, describePIDs(listeners))), nil
	}

	now := e.cfg.Now()
	if d.policy.GaveUp(now) {
		return d.with(ActionSkip, ResultFailure, "gave_up: "+d.policy.GaveUpReason), nil
	}
	if !d.policy.GaveUpUntil.IsZero() && !dryRun {
		// The hour has passed: one more start is allowed. The failures
		// are kept, so that if it fails too the deployment is given up
		// again at once rather than after five more.
		d.policy.GaveUpUntil, d.policy.GaveUpReason = time.Time{}, ""
		if err := e.state.SaveRestartPolicy(ctx, d.policy); err != nil {
			return d, err
		}
		e.finish(ctx, Outcome{DeploymentID: id, Deployment: dep.Name, Action: ActionReset,
			Result: ResultSuccess, Reason: "give_up_expired", OldPID: dep.PID})
	}
	if now.Before(d.policy.NextStart) {
		return d.with(ActionSkip, ResultFailure, "backoff"), nil
	}
	starts, err := e.state.StartsSince(ctx, id, now.Add(-e.cfg.Policy.Window))
	if err != nil {
		return d, err
	}
	if starts >= e.cfg.Policy.MaxStarts {
		reason := fmt.Sprintf("flapping: %d starts within %s", starts, e.cfg.Policy.Window)
		if dryRun {
			return d.with(ActionGiveUp, ResultPlanned, reason), nil
		}
		d.policy = e.cfg.Policy.giveUp(d.policy, now, reason)
		if err := e.state.SaveRestartPolicy(ctx, d.policy); err != nil {
			return d, err
		}
		e.shoutGaveUp(d.Outcome, reason)
		return d.with(ActionGiveUp, ResultFailure, reason), nil
	}
	return planned(ActionRestart), nil
}

// findRunning looks for the deployment's java under any PID: first as the
// owner of a listening socket on its port, then by command line. When there
// are several (a duplicate somebody else started), the oldest is chosen and
// the others are left alone; they are reported, never killed.
func (e *Engine) findRunning(identity procid.Identity, listeners []int, dep steam.Deployment) (int, error) {
	for _, pid := range listeners {
		if pid > 0 && e.procs.Inspect(pid, identity).Status == procid.StatusRunning {
			return pid, nil
		}
	}
	found, err := e.procs.Find(identity)
	if err != nil {
		return 0, err
	}
	if len(found) == 0 {
		return 0, nil
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
	return oldest.PID, nil
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

// javaPath resolves the java to start, at every start: installing a JDK
// after the remediator started must not need a restart of it.
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

// Reset clears the restart policy's memory of a deployment (failures,
// backoff, giving up, past starts) and journals it. The deployment is started
// again by the next notification or sweep.
func (e *Engine) Reset(ctx context.Context, id int64) error {
	unlock, err := e.lock(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	pol, err := e.state.RestartPolicy(ctx, id)
	if err != nil {
		return err
	}
	if err := e.state.ResetRestartPolicy(ctx, id); err != nil {
		return err
	}
	o := Outcome{DeploymentID: id, Action: ActionReset, Result: ResultSuccess, Reason: "operator"}
	if pol.GaveUp(e.cfg.Now()) {
		o.Reason = "operator: was given up (" + pol.GaveUpReason + ")"
	}
	if dep, err := e.registry.Deployment(ctx, id); err == nil {
		o.Deployment, o.OldPID = dep.Name, dep.PID
	}
	e.finish(ctx, o)
	return nil
}

// finish journals o, counts it and logs it.
func (e *Engine) finish(ctx context.Context, o Outcome) {
	e.metrics.actions.WithLabelValues(o.Action, o.Result).Inc()
	_, err := e.state.Record(context.WithoutCancel(ctx), state.Entry{
		DeploymentID: o.DeploymentID, Deployment: o.Deployment, Action: o.Action, Result: o.Result,
		Reason: o.Reason, OldPID: o.OldPID, NewPID: o.NewPID, Duration: o.Duration,
	})
	if err != nil {
		e.metrics.journalFailures.Inc()
		e.logger.Error("Could not journal remediation", "deployment_id", o.DeploymentID, "action", o.Action, "err", err)
	}
	attrs := []any{"deployment_id", o.DeploymentID, "deployment", o.Deployment, "action", o.Action,
		"result", o.Result, "reason", o.Reason, "old_pid", o.OldPID, "new_pid", o.NewPID, "duration", o.Duration}
	switch {
	case o.Action == ActionNoop || (o.Action == ActionSkip && o.Result == ResultSuccess):
		e.logger.Debug("Remediation done", attrs...)
	case o.Action == ActionGiveUp:
		// gaveUp says it louder.
	case o.Action == ActionError:
		e.logger.Error("Remediation failed", attrs...)
	case o.Result == ResultFailure:
		e.logger.Warn("Remediation failed", attrs...)
	default:
		e.logger.Info("Remediation done", attrs...)
	}
}

// Sweep remediates every deployment of Steam's registry, or with dryRun
// plans it (see Plan), at most Config.Concurrency at once, and returns the
// outcomes in the order of the deployments' ids. It is the old cron job done
// right: the same decisions, locks and policy as a notification's. Unlike
// Remediate, it does not journal deployments with nothing to do. err is set
// when the registry cannot be listed, or when ctx ended before every
// deployment was begun: those left are not touched, and have an ActionError
// outcome that is not journaled. A deployment whose remediation failed has
// an ActionError outcome.
func (e *Engine) Sweep(ctx context.Context, dryRun bool) ([]Outcome, error) {
	return e.sweep(ctx, dryRun, nil)
}

// errClosing ends a periodic sweep when the engine shuts down.
var errClosing = errors.New("the engine is shutting down")

// sweep is Sweep, which also stops beginning remediations once stop is
// closed.
func (e *Engine) sweep(ctx context.Context, dryRun bool, stop <-chan struct{}) ([]Outcome, error) {
	ds, err := e.registry.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	outcomes := make([]Outcome, len(ds))
	sem := make(chan struct{}, e.cfg.Concurrency)
	acquire := func() error {
		// Checked first: select picks at random among ready cases.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errClosing
		default:
		}
		select {
		case sem <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errClosing
		}
	}
	var wg sync.WaitGroup
	for i, d := range ds {
		if err = acquire(); err != nil {
			for j, d := range ds[i:] {
				outcomes[i+j] = Outcome{DeploymentID: d.ID, Deployment: d.Name, OldPID: d.PID, Action: ActionError,
					Result: ResultFailure, Reason: "not_remediated: " + err.Error(), DryRun: dryRun}
			}
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if dryRun {
				outcomes[i], _ = e.Plan(ctx, d.ID)
			} else {
				outcomes[i], _ = e.remediate(ctx, d.ID, time.Now(), true)
			}
		})
	}
	wg.Wait()
	return outcomes, err
}
