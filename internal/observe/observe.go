// Package observe turns the registry and process table into one observation per deployment.
package observe

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Observation is one deployment and what its recorded PID turned out to be.
type Observation struct {
	steam.Deployment
	Process procid.Process // measured only when running
	Status  string         // one of steam.Statuses
}

func (o Observation) Running() bool { return o.Process.Status == procid.StatusRunning }

// Observer remembers the javas it verified, to only re-measure them next time.
type Observer struct {
	registry *steam.Registry
	procs    *procid.Inspector

	mu       sync.Mutex
	verified map[int64]verified // by deployment id
}

type verified struct {
	id   procid.Identity
	proc procid.Process
}

func New(reg *steam.Registry, in *procid.Inspector) *Observer {
	return &Observer{registry: reg, procs: in, verified: map[int64]verified{}}
}

// All reads the registry once and observes every deployment.
func (o *Observer) All(ctx context.Context) ([]Observation, error) {
	return o.all(ctx, true)
}

// Running observes who runs, not how much: a java still pinned since the
// last look keeps the figures it had then (the prober, every round).
func (o *Observer) Running(ctx context.Context) ([]Observation, error) {
	obs, err := o.all(ctx, false)
	return slices.DeleteFunc(obs, func(ob Observation) bool { return !ob.Running() }), err
}

func (o *Observer) all(ctx context.Context, measure bool) ([]Observation, error) {
	ds, err := o.registry.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	prev := o.verified
	o.mu.Unlock()
	obs := make([]Observation, len(ds))
	forEach(len(ds), func(i int) { obs[i] = o.observe(ds[i], prev, measure) })
	next := make(map[int64]verified, len(obs))
	for _, ob := range obs {
		if ob.Running() {
			id, _ := ob.Identity()
			next[ob.ID] = verified{id: id, proc: ob.Process}
		}
	}
	o.mu.Lock()
	o.verified = next
	o.mu.Unlock()
	return obs, nil
}

// ErrUnidentified: no war or port to check a command line against.
var ErrUnidentified = errors.New("the deployment's row identifies no java")

// Verify checks once whether d's recorded PID runs d's java, for a caller
// that pins the process by other means first (the exit watch's pidfd).
func (o *Observer) Verify(d steam.Deployment) (procid.Process, error) {
	id, ok := d.Identity()
	if !ok || d.Problem != "" {
		return procid.Process{}, ErrUnidentified
	}
	return o.procs.Inspect(int(d.PID), id), nil
}

func (o *Observer) observe(d steam.Deployment, prev map[int64]verified, measure bool) Observation {
	id, _ := d.Identity()
	var p procid.Process
	if v, ok := prev[d.ID]; ok && int64(v.proc.PID) == d.PID && sameIdentity(v.id, id) {
		p = v.proc
		if measure || !p.StillPinned() {
			p = o.procs.Remeasure(v.proc, id)
		}
	} else {
		p = o.procs.Inspect(int(d.PID), id)
	}
	return Observation{Deployment: d, Process: p, Status: d.Status(p)}
}

func sameIdentity(a, b procid.Identity) bool {
	return a.JettyRunner == b.JettyRunner && a.Port == b.Port && slices.Equal(a.Wars, b.Wars)
}

// forEach uses one goroutine per CPU: inspecting is kernel time in /proc.
func forEach(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				fn(int(i))
			}
		})
	}
	wg.Wait()
}
