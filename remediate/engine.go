// Package remediate brings dead and hung Steam deployments back, exactly as
// Steam starts them, once per deployment (a lock file each), signalling only
// its own children and pidfd-verified javas; a start counts once it serves,
// and only then is its PID written into Steam's row, by compare-and-set.
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
	AlertExited       = "SteamDeploymentExited" // sent by the exporter's exit watch
)

// Engine remediates the deployments of one Steam home.
type Engine struct {
	cfg      Config
	logger   *slog.Logger
	registry *steam.Registry
	procs    *procid.Inspector
	state    *state.DB
	metrics  *metrics
	answered answered // javas seen answering: their start grace is over

	mu        sync.Mutex
	cond      *sync.Cond
	jobs      map[int64]*job // queued or being remediated
	queue     []int64
	started   bool
	closed    bool
	closing   chan struct{} // closed by Shutdown
	retries   map[int64]*time.Timer
	attempts  map[int64]int // transient failures in a row
	workCtx   context.Context
	stopWork  context.CancelFunc
	workers   sync.WaitGroup
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
// notification would; a failure is journaled as ActionError and returned.
func (e *Engine) Remediate(ctx context.Context, id int64) (Outcome, error) {
	return e.remediate(ctx, id, trigger{alert: AlertDown, queued: time.Now()})
}

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

// Reset clears the restart policy's memory of a deployment and journals it.
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
	o := Outcome{DeploymentID: id}.with(ActionReset, ResultSuccess, ReasonOperator, "")
	if pol.GaveUp(e.cfg.Now()) {
		o.Detail = "was given up: " + pol.GaveUpReason
	}
	if dep, err := e.registry.Deployment(ctx, id); err == nil {
		o.Deployment, o.OldPID = dep.Name, dep.PID
	}
	e.record(ctx, o, toJournal)
	return nil
}

// trigger is what asked for a remediation.
type trigger struct {
	alert  string // AlertDown, AlertUnresponsive, or "" for a sweep
	queued time.Time
	sweep  bool
}

func (t trigger) unresponsive() bool { return t.alert == AlertUnresponsive }
