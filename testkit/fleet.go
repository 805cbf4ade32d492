package testkit

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// StartAll starts every deployment with Steam's argv, sixteen at a time,
// and records their PIDs in one transaction: benchmarks start a thousand.
func (h *Home) StartAll(ds []steam.Deployment) []*os.Process {
	h.t.Helper()
	procs := make([]*os.Process, len(ds))
	errs := make(chan error, len(ds))
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ds); i += workers {
				cmd := h.Command(h.Java, ds[i])
				if err := cmd.Start(); err != nil {
					errs <- err
					return
				}
				Reap(h.t, cmd)
				procs[i] = cmd.Process
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.t.Fatalf("starting deployments: %v", err)
	}
	tx, err := h.DB.Begin()
	if err != nil {
		h.t.Fatal(err)
	}
	for i, d := range ds {
		if _, err := tx.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, procs[i].Pid, d.ID); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		h.t.Fatal(err)
	}
	return procs
}

// MetricSum gathers c and sums the counter and gauge samples of name that
// keep accepts (all of them when keep is nil).
func MetricSum(t testing.TB, c prometheus.Collector, name string, keep func(*dto.Metric) bool) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if keep == nil || keep(m) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// AddScorers adds n deployments, scorer-0.., on ports firstPort and up. With
// the never_ready behaviour they live with Steam's argv but never listen,
// so a thousand stay cheap.
func (h *Home) AddScorers(n, firstPort int, b Behaviour) []steam.Deployment {
	h.Exec(`PRAGMA synchronous = OFF`) // builds the fixture faster; the journal mode stays Steam's
	ds := make([]steam.Deployment, n)
	for i := range ds {
		ds[i] = h.Add(Spec{Name: fmt.Sprintf("scorer-%d", i), LogicalName: "scorer", Port: firstPort + i, Behaviour: b})
	}
	return ds
}
