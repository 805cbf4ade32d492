package collector_test

import (
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// benchDeployments is the scale the exporter is held to: one scrape of a
// thousand deployments, each backed by a live process.
const benchDeployments = 1000

// BenchmarkCollect measures one scrape of 1000 deployments, each running
// as a live fake java with Steam's exact argv. "collect" is the collector
// alone; "gather" adds what the registry does to every scrape (sorting,
// conversion to the exposition model); "scrape" adds the text encoding of
// an HTTP request to /metrics.
func BenchmarkCollect(b *testing.B) {
	h := testkit.NewHome(b)
	h.StartAll(h.AddScorers(benchDeployments, 20000, testkit.Behaviour{Mode: "never_ready"}))

	c := newCollector(b, h, "")
	// A benchmark of deployments that are not all up would measure the
	// wrong path.
	up := 0
	for _, smp := range gather(b, c)["steam_deployment_up"] {
		if smp.value == 1 {
			up++
		}
	}
	if up != benchDeployments {
		b.Fatalf("%d of %d deployments up before the benchmark", up, benchDeployments)
	}

	b.Run("collect", func(b *testing.B) {
		ch := make(chan prometheus.Metric, 16*benchDeployments)
		measure(b, func() {
			c.Collect(ch)
			for len(ch) > 0 {
				<-ch
			}
		})
	})
	b.Run("gather", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		measure(b, func() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("scrape", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
		measure(b, func() {
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("GET /metrics: %d", rec.Code)
			}
		})
	})
}

// measure runs scrape in b.Loop and reports allocations and the CPU time
// (user + system) the process spent per scrape.
func measure(b *testing.B, scrape func()) {
	b.ReportAllocs()
	before := cpuTime(b)
	for b.Loop() {
		scrape()
	}
	b.ReportMetric((cpuTime(b)-before).Seconds()/float64(b.N), "cpu-s/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
