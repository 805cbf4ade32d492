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

// Target is a deployment whose java was verified running when a round began.
type Target struct {
	ID   int64
	Name string
	Port int
	PID  int
	// With PID, names one process: a restarted deployment counts afresh.
	Started float64
	UID     uint32 // the java's effective user
}

func (t Target) sameProcess(u Target) bool { return t.PID == u.PID && t.Started == u.Started }

type Outcome struct {
	Target
	Result
	Failures int // this process's consecutive failures
	// LastSuccess is zero until this process answers once: its start grace
	// then ends, a later silence is a hang.
	LastSuccess time.Time
}

type Targets func(context.Context) ([]Target, error)

type Config struct {
	Path        string
	Timeout     time.Duration
	Interval    time.Duration
	Concurrency int
	// After, if set, runs in the round after each probe, where a slow
	// deployment delays only the round (reading its /stats, its JVM's counters).
	After func(ctx context.Context, t Target, r Result)
}

// Prober probes in the background, so a scrape never waits on a hung JVM.
type Prober struct {
	targets Targets
	cfg     Config
	logger  *slog.Logger

	mu       sync.Mutex
	round    uint64 // a probe finishing after a newer round began is dropped
	outcomes map[int64]Outcome
}

// NewProber: zero fields of cfg take the defaults.
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

// Run probes every interval until ctx ends; a long round delays the next.
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

// Round drops a deployment no longer running at once; when targets cannot
// be listed the old outcomes stay, their timestamps ageing.
func (p *Prober) Round(ctx context.Context) {
	targets, err := p.targets(ctx)
	if ctx.Err() != nil {
		return
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

	forEach(len(targets), p.cfg.Concurrency, MaxConcurrency, p.cfg.Interval-p.cfg.Timeout, func(i int) {
		r := Ping(ctx, targets[i].Port, p.cfg.Path, p.cfg.Timeout)
		if ctx.Err() == nil && p.cfg.After != nil {
			p.cfg.After(ctx, targets[i], r)
		}
		if ctx.Err() == nil { // cancelled is not failed
			p.record(round, targets[i], r)
		}
	})
}

func (p *Prober) record(round uint64, t Target, r Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if round != p.round {
		return
	}
	o := Outcome{Target: t, Result: r}
	prev, same := p.outcomes[t.ID]
	same = same && prev.sameProcess(t)
	if same {
		o.LastSuccess = prev.LastSuccess
	}
	if r.Success {
		o.LastSuccess = r.Time
	} else {
		o.Failures = 1
		if same {
			o.Failures = prev.Failures + 1
		}
		p.logger.Debug("Deployment did not answer its probe", "deployment_id", t.ID, "pid", t.PID,
			"failures", o.Failures, "err", r.Reason())
	}
	p.outcomes[t.ID] = o
}

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

// RunningTargets: a foreign process on a deployment's port is never probed.
func RunningTargets(reg *steam.Registry, in *procid.Inspector) Targets {
	return ObservedTargets(observe.New(reg, in))
}

// ObservedTargets are the running deployments obs observes; an observer
// shared with the collector remembers each verified java once.
func ObservedTargets(obs *observe.Observer) Targets {
	return func(ctx context.Context) ([]Target, error) {
		running, err := obs.Running(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading Steam's registry: %w", err)
		}
		ts := make([]Target, 0, len(running))
		for _, o := range running {
			ts = append(ts, Target{ID: o.ID, Name: o.Name, Port: int(o.Port), PID: o.Process.PID,
				Started: o.Process.StartTime, UID: o.Process.UID})
		}
		return ts, nil
	}
}
