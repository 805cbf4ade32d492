package probe

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Target is a deployment whose java was verified running when a round
// began: only such a process is probed on the deployment's behalf.
type Target struct {
	ID   int64
	Name string
	Port int
	PID  int
	// Started is the process's start time (Unix seconds). With PID it names
	// one process: a restarted deployment starts counting failures afresh.
	Started float64
}

func (t Target) sameProcess(u Target) bool { return t.PID == u.PID && t.Started == u.Started }

// Outcome is the latest probe of one target.
type Outcome struct {
	Target
	Result
	// Failures counts this process's consecutive failed probes; 0 after a
	// success.
	Failures int
}

// Targets lists the deployments to probe in a round.
type Targets func(context.Context) ([]Target, error)

// Config is how a Prober probes.
type Config struct {
	Path        string
	Timeout     time.Duration
	Interval    time.Duration
	Concurrency int
}

// Prober probes every running deployment in the background, so that reading
// its results (a scrape) never waits on a deployment that does not answer.
type Prober struct {
	targets Targets
	cfg     Config
	logger  *slog.Logger

	mu sync.Mutex
	// round numbers the rounds; a probe finishing after a newer round began
	// is dropped.
	round    uint64
	outcomes map[int64]Outcome
}

// NewProber returns a prober of what targets lists; zero fields of cfg take
// the package's defaults.
func NewProber(targets Targets, cfg Config, logger *slog.Logger) *Prober {
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	return &Prober{targets: targets, cfg: cfg, logger: logger, outcomes: map[int64]Outcome{}}
}

// Run probes a round at once and then every interval until ctx ends. A
// round longer than the interval (many deployments timing out) delays the
// next one instead of overlapping it.
func (p *Prober) Run(ctx context.Context) {
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Round lists the targets and probes each once. A deployment no longer
// running stops being published at once; a running one keeps its previous
// outcome until its new probe finishes. When the targets cannot be listed
// the previous outcomes stay, their timestamps ageing.
func (p *Prober) Round(ctx context.Context) {
	targets, err := p.targets(ctx)
	if ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		p.logger.Error("Listing the deployments to probe failed", "err", err)
		return
	}
	p.mu.Lock()
	p.round++
	round := p.round
	kept := make(map[int64]Outcome, len(targets))
	for _, t := range targets {
		if o, ok := p.outcomes[t.ID]; ok && o.sameProcess(t) {
			o.Target = t
			kept[t.ID] = o
		}
	}
	p.outcomes = kept
	p.mu.Unlock()

	forEach(len(targets), p.concurrency(len(targets)), func(i int) {
		r := Ping(ctx, targets[i].Port, p.cfg.Path, p.cfg.Timeout)
		if ctx.Err() == nil { // cancelled is not failed
			p.record(round, targets[i], r)
		}
	})
}

// concurrency is how many of n targets a round probes at once: enough that
// the round ends within one interval even if every one of them times out
// (a host-wide stall), never fewer than configured, never more than
// MaxConcurrency.
func (p *Prober) concurrency(n int) int {
	worst := (time.Duration(n)*p.cfg.Timeout + p.cfg.Interval - 1) / p.cfg.Interval
	return min(max(int(worst), p.cfg.Concurrency), MaxConcurrency)
}

func (p *Prober) record(round uint64, t Target, r Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if round != p.round {
		return
	}
	o := Outcome{Target: t, Result: r}
	if !r.Success {
		o.Failures = 1
		if prev, ok := p.outcomes[t.ID]; ok && prev.sameProcess(t) {
			o.Failures = prev.Failures + 1
		}
		p.logger.Debug("Deployment did not answer its probe", "deployment_id", t.ID, "pid", t.PID,
			"failures", o.Failures, "err", r.Reason())
	}
	p.outcomes[t.ID] = o
}

// Latest returns the latest outcome of every deployment running at the
// last round, by deployment id.
func (p *Prober) Latest() []Outcome {
	p.mu.Lock()
	out := make([]Outcome, 0, len(p.outcomes))
	for _, o := range p.outcomes {
		out = append(out, o)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Outcome) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// RunningTargets lists the deployments of reg whose recorded PID verifies
// as their own java: a foreign process on a deployment's port is never
// probed on its behalf. What a round verified, the next only rechecks by
// start time.
func RunningTargets(reg *steam.Registry, in *procid.Inspector) Targets {
	obs := observe.New(reg, in)
	var mu sync.Mutex // Round is not meant to overlap, but Targets may be shared
	known := observe.Known{}
	return func(ctx context.Context) ([]Target, error) {
		mu.Lock()
		defer mu.Unlock()
		running, err := obs.Running(ctx, known)
		if err != nil {
			return nil, fmt.Errorf("reading Steam's registry: %w", err)
		}
		known = make(observe.Known, len(running))
		ts := make([]Target, 0, len(running))
		for _, o := range running {
			known[o.ID] = o.Process
			ts = append(ts, Target{ID: o.ID, Name: o.Name, Port: int(o.Port), PID: o.Process.PID, Started: o.Process.StartTime})
		}
		return ts, nil
	}
}
