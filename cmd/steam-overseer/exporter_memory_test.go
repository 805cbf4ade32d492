package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// BenchmarkExporterHeap scrapes the exporter's metrics, registered as
// runExporter registers them, over 1000 serving deployments with JVM
// counters once the prober has read them all: through promhttp's one
// gather ("one-gather") and through the exporter's handler ("in-turn").
// Besides allocations per scrape it reports the heap live between scrapes
// (retained-B, with this benchmark's own 1000 processes) and the most live
// while the exposition is written (written-B): the Go heap grows to about
// twice that, and the exporter's RSS with it.
func BenchmarkExporterHeap(b *testing.B) {
	const n = 1000
	counters, err := os.ReadFile("../../internal/hsperf/testdata/jdk17-GarbageFirst.hsperf")
	if err != nil {
		b.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	perfDir := filepath.Join("/tmp", "hsperfdata_"+u.Username)
	if err := os.MkdirAll(perfDir, 0o755); err != nil {
		b.Fatal(err)
	}
	h := testkit.NewHome(b)
	ds := h.AddScorers(n, 24000, testkit.Behaviour{})
	for _, p := range h.StartAll(ds) {
		file := filepath.Join(perfDir, strconv.Itoa(p.Pid))
		if err := os.WriteFile(file, counters, 0o600); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.Remove(file) })
	}
	for _, d := range ds {
		if err := testkit.WaitReady(context.Background(), int(d.Port), 30*time.Second); err != nil {
			b.Fatal(err)
		}
	}

	in, err := procid.NewInspector("")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	probes := probeFlags{enabled: true, path: probe.DefaultPath, timeout: probe.DefaultTimeout,
		interval: probe.DefaultInterval, startGrace: probe.DefaultStartGrace}
	reg, stop, err := exporterMetrics(ctx, promslog.NewNopLogger(), h.Home, h.Home.StatePath(), in, probes, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); stop() })
	testkit.Eventually(b, 3*time.Minute, "the prober's first round", func() bool {
		return count(b, reg.all, "steam_deployment_jvm_threads_current") == n &&
			count(b, reg.all, "steam_deployment_prediction_duration_seconds") == n
	})

	for _, tc := range []struct {
		name    string
		handler http.Handler
	}{
		{"one-gather", promhttp.HandlerFor(reg.all, promhttp.HandlerOpts{})},
		{"in-turn", reg.Handler(promslog.NewNopLogger())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			var written uint64 // the live heap as the exposition is written
			scrape := func(measure bool) {
				w := &discard{header: http.Header{}}
				if measure {
					w.every = func() { written = max(written, liveHeap()) }
				}
				tc.handler.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.size < n*100 {
					b.Fatalf("GET /metrics: %d, %d bytes", w.code, w.size)
				}
			}
			scrape(false)
			retained := liveHeap()
			scrape(true)
			b.ReportAllocs()
			for b.Loop() {
				scrape(false)
			}
			b.ReportMetric(float64(retained), "retained-B")
			b.ReportMetric(float64(written), "written-B")
		})
	}
}

// liveHeap collects and returns what survived.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func count(b *testing.B, g prometheus.Gatherer, name string) int {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// discard is a response writer that keeps nothing, as a socket would, and
// calls every (if set) each 64 KiB.
type discard struct {
	header http.Header
	code   int
	size   int
	every  func()
}

func (d *discard) Header() http.Header  { return d.header }
func (d *discard) WriteHeader(code int) { d.code = code }
func (d *discard) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	if d.every != nil && d.size/(64<<10) != (d.size+len(p))/(64<<10) {
		d.every()
	}
	d.size += len(p)
	return len(p), nil
}
