// Package remediate brings dead and hung Steam deployments back. For one
// deployment it decides (decide.go, no side effects) whether there is nothing
// to do, whether the deployment's java runs under a PID the row does not know
// (adopt it once it answers), or whether to start it again exactly as Steam
// does; then it carries the plan out (apply.go). A start counts only once
// the service answers its probe, and only then is its PID written into
// Steam's row, by compare-and-set.
//
// A lock file per deployment keeps two remediators from starting it twice;
// only the engine's own children and processes re-verified through a pidfd
// are ever signalled; a restart policy kept in the state database (backoff,
// giving up) survives restarts of the remediator.
package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Alert names the remediator acts on.
const (
	AlertDown         = "SteamDeploymentDown"
	AlertUnresponsive = "SteamDeploymentUnresponsive"
)

// Engine remediates the deployments of one Steam home: queued notifications
// through Start, Enqueue and Shutdown, single sweeps through Sweep.
type Engine struct {
	cfg      Config
	logger   *slog.Logger
	registry *steam.Registry
	procs    *procid.Inspector
	state    *state.DB
	metrics  *metrics

	mu       sync.Mutex
	cond     *sync.Cond
	jobs     map[int64]*job // queued or being remediated
	queue    []int64
	started  bool
	closed   bool
	closing  chan struct{} // closed by Shutdown
	retries  map[int64]*time.Timer
	attempts map[int64]int // transient failures in a row
	workCtx  context.Context
	stopWork context.CancelFunc
	workers  sync.WaitGroup
	// watchCtx ends the watchers of ready processes and pending journal writes.
	watchCtx  context.Context
	stopWatch context.CancelFunc
	watchers  sync.WaitGroup
}

// New returns an engine whose metrics are registered on reg (nil: none).
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
	procs, err := procid.NewInspector(cfg.ProcRoot)
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
		attempts: map[int64]int{},
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

// Remediate remediates one deployment now, as a SteamDeploymentDown
// notification would, under its lock. err is set when it could not be
// carried out; the ActionError outcome is journaled all the same.
func (e *Engine) Remediate(ctx context.Context, id int64) (Outcome, error) {
	return e.remediate(ctx, id, trigger{alert: AlertDown, queued: time.Now()})
}

// RemediateAlert is Remediate for a notification of the named alert.
func (e *Engine) RemediateAlert(ctx context.Context, id int64, alertname string) (Outcome, error) {
	return e.remediate(ctx, id, trigger{alert: alertname, queued: time.Now()})
}

// Plan decides what Remediate would do now and does none of it.
func (e *Engine) Plan(ctx context.Context, id int64) (Outcome, error) {
	begin := time.Now()
	p, err := e.decide(ctx, id, trigger{alert: AlertDown, queued: begin})
	o := p.Outcome
	o.Duration, o.DryRun = time.Since(begin), true
	if err != nil {
		o = o.with(ActionError, ResultFailure, ReasonTransient, err.Error())
	} else if o.Result == "" {
		o.Result = ResultPlanned
	}
	for _, ev := range p.events {
		if ev.Action == ActionGiveUp && o.Result != ResultFailure {
			o = o.with(ActionGiveUp, ResultPlanned, ev.Reason, ev.Detail)
		}
	}
	return o, err
}

// trigger is what asked for a remediation.
type trigger struct {
	alert  string // AlertDown, AlertUnresponsive, or "" for a sweep
	queued time.Time
	sweep  bool
}

func (t trigger) unresponsive() bool { return t.alert == AlertUnresponsive }

// remediate runs one remediation and journals its outcome. A transient
// error is retried later (when the workers run). A sweep journals nothing
// for deployments with nothing to do, lest it bury the real actions.
func (e *Engine) remediate(ctx context.Context, id int64, t trigger) (Outcome, error) {
	o, journaled, err := e.remediateLocked(ctx, id, t)
	if err == nil && o.Reason == ReasonNotFound {
		_ = e.removeLock(id) // deleted from Steam: its lock file goes too
	}
	if err != nil {
		o = Outcome{DeploymentID: id, Deployment: o.Deployment, OldPID: o.OldPID}.
			with(ActionError, ResultFailure, ReasonTransient, err.Error())
		o.Detail += e.scheduleRetry(id, t)
	} else {
		e.clearAttempts(id)
	}
	if !journaled {
		o.Duration = time.Since(t.queued)
	}
	switch {
	case journaled:
	case t.sweep && o.Result == ResultSuccess && (o.Action == ActionNoop || o.Action == ActionSkip):
		e.metrics.actions.WithLabelValues(string(o.Action), string(o.Result)).Inc()
	default:
		e.finish(ctx, o)
	}
	return o, err
}

// remediateLocked decides and applies under the deployment's lock. A
// compare-and-set that finds the row changed decides again: somebody else
// acted. journaled says the outcome was journaled where it happened.
func (e *Engine) remediateLocked(ctx context.Context, id int64, t trigger) (o Outcome, journaled bool, err error) {
	unlock, err := e.lock(ctx, id)
	if err != nil {
		return Outcome{DeploymentID: id}, false, err
	}
	defer unlock()
	for range 3 {
		p, err := e.decide(ctx, id, t)
		if err != nil {
			return p.Outcome, false, err
		}
		o, journaled, again, err := e.apply(ctx, p, t)
		if !again {
			return o, journaled, err
		}
	}
	return Outcome{DeploymentID: id}.with(ActionAdopt, ResultFailure, ReasonRowChanged,
		"the row kept changing while the deployment was remediated"), false, nil
}
