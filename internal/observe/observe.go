// Package observe turns Steam's registry and the process table into one
// observation per deployment, so the collector, prober and status agree.
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
	Process procid.Process // measured only when running
	Status  string         // one of steam.Statuses
}

func (o Observation) Running() bool { return o.Process.Status == procid.StatusRunning }

// Observer observes the deployments of one registry.
type Observer struct {
	registry *steam.Registry
	procs    *procid.Inspector
}

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

// Known holds verified javas by deployment id.
type Known map[int64]procid.Process

// Running observes the deployments whose recorded process is their java. A
// process in known is kept after a look at its start time (PID and start
// time name one process for good); its resource figures are not refreshed.
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
	id, _ := d.Identity()
	p := o.procs.Inspect(int(d.PID), id)
	return Observation{Deployment: d, Process: p, Status: d.Status(p)}
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
