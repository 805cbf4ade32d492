package collector_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// serving starts n deployments that listen on ports firstPort.. (below the
// ephemeral range, so no other test's socket takes them), records their
// PIDs and waits until each answers /ping.
func serving(b *testing.B, n, firstPort int) (*testkit.Home, []*os.Process) {
	h := testkit.NewHome(b)
	ds := h.AddScorers(n, firstPort, testkit.Behaviour{})
	procs := h.StartAll(ds)
	for _, d := range ds {
		if err := testkit.WaitReady(context.Background(), int(d.Port), 30*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	return h, procs
}

// failing counts the deployments whose latest probe failed.
func failing(p *probe.Prober) int {
	n := 0
	for _, o := range p.Latest() {
		if !o.Success {
			n++
		}
	}
	return n
}

// BenchmarkScrapeWithHungDeployments scrapes the exporter's two
// deployment collectors over HTTP with 100 serving deployments, then with
// 20 of them SIGSTOPped, while the prober runs in the background (every
// second, 2 s timeout: probes of the stopped ones are nearly always in
// flight). A scrape must not wait on them: compare the two ns/op.
func BenchmarkScrapeWithHungDeployments(b *testing.B) {
	const deployments, hung = 100, 20
	h, procs := serving(b, deployments, 23000)
	p := newProber(b, h, probe.Config{Interval: time.Second, Timeout: probe.DefaultTimeout})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(b, h, ""), collector.NewProbeCollector(p, probe.DefaultStartGrace))
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	scrape := func() {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /metrics: %d", rec.Code)
		}
	}
	testkit.Eventually(b, 30*time.Second, "every deployment's first probe", func() bool { return len(p.Latest()) == deployments })

	b.Run("none-hung", func(b *testing.B) {
		if n := failing(p); n != 0 {
			b.Fatalf("%d deployments fail their probes before any is stopped", n)
		}
		measure(b, scrape)
	})
	for _, proc := range procs[:hung] {
		testkit.Freeze(b, proc)
	}
	testkit.Eventually(b, 30*time.Second, "the stopped deployments to fail their probes", func() bool { return failing(p) == hung })
	b.Run("20-hung", func(b *testing.B) { measure(b, scrape) })
}

// BenchmarkProberRound measures the background prober's cost: one round
// of 1000 serving deployments ("round": listing the registry, verifying
// each PID, one HTTP probe each; "ping": the probes alone). cpu-s/op of a
// round divided by the interval (10 s by default) is the share of one
// core the prober takes.
func BenchmarkProberRound(b *testing.B) {
	const deployments = 1000
	h, _ := serving(b, deployments, 21000)
	p := newProber(b, h, probe.Config{})
	p.Round(context.Background())
	if n := len(p.Latest()); n != deployments || failing(p) != 0 {
		b.Fatalf("%d of %d deployments probed, %d failing, before the benchmark", n, deployments, failing(p))
	}
	b.Run("round", func(b *testing.B) {
		measure(b, func() { p.Round(context.Background()) })
	})
	var ports []int
	for _, o := range p.Latest() {
		ports = append(ports, o.Port)
	}
	b.Run("ping", func(b *testing.B) {
		measure(b, func() {
			probe.PingAll(context.Background(), ports, probe.DefaultPath, probe.DefaultTimeout, probe.DefaultConcurrency)
		})
	})
}
