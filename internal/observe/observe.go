// Package observe turns Steam's registry and the process table into one
// observation per deployment. The collector, the prober, status and the demo
// all see deployments through it, so they cannot disagree.
package observe

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Observation is one deployment and what its recorded PID turned out to be.
type Observation struct {
	steam.Deployment
	// Process is set only as far as procid proved it: resources only when
	// Process.Status is procid.StatusRunning.
	Process procid.Process
	// Status is one of steam.Statuses.
	Status string
}

// Running reports whether the deployment's recorded process is its verified java.
func (o Observation) Running() bool { return o.Process.Status == procid.StatusRunning }

// Observer observes the deployments of one registry.
type Observer struct {
	registry *steam.Registry
	procs    *procid.Inspector
}

// New returns an observer of reg's deployments, their processes read through in.
func New(reg *steam.Registry, in *procid.Inspector) *Observer {
	return &Observer{registry: reg, procs: in}
}

// All reads the registry once and inspects every deployment's recorded PID.
func (o *Observer) All(ctx context.Context) ([]Observation, error) {
	ds, err := o.registry.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	obs := make([]Observation, len(ds))
	forEach(len(ds), func(i int) { obs[i] = o.observe(ds[i]) })
	return obs, nil
}

// Known is what an earlier observation proved: the verified java of a
// deployment, by deployment id.
type Known map[int64]procid.Process

// Running observes only the deployments whose recorded process is their
// verified java. A process in known with the recorded PID is kept after one
// look at its start time, not inspected again: a PID and a start time name
// one process for good. The result's Process holds no fresh resource figures.
func (o *Observer) Running(ctx context.Context, known Known) ([]Observation, error) {
	ds, err := o.registry.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	obs := make([]Observation, len(ds))
	forEach(len(ds), func(i int) {
		d := ds[i]
		if p, ok := known[d.ID]; ok && int64(p.PID) == d.PID && o.procs.Unchanged(p) {
			obs[i] = Observation{Deployment: d, Process: p, Status: string(procid.StatusRunning)}
			return
		}
		if _, ok := d.Identity(); ok {
			obs[i] = o.observe(d)
		}
	})
	running := obs[:0]
	for _, ob := range obs {
		if ob.Running() {
			running = append(running, ob)
		}
	}
	return running, nil
}

func (o *Observer) observe(d steam.Deployment) Observation {
	// An unrecognisable deployment's zero identity proves no process.
	id, _ := d.Identity()
	p := o.procs.Inspect(int(d.PID), id)
	return Observation{Deployment: d, Process: p, Status: d.Status(p)}
}

// forEach runs fn(0..n-1) on one goroutine per CPU: inspecting is mostly
// kernel time reading /proc.
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
