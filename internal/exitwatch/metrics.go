package exitwatch

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	watched     prometheus.Gauge
	exits       *prometheus.CounterVec
	stopped     prometheus.Counter
	reads       prometheus.Counter
	readErrors  prometheus.Counter
	syncSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		watched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "steam_exporter_exit_watch_processes",
			Help: "Deployment javas verified and watched for their exit through a pidfd.",
		}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steam_exporter_exit_watch_exits_total",
			Help: "Deployments reported down by the exit watch, by what became of the recorded process.",
		}, []string{"reason"}),
		stopped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "steam_exporter_exit_watch_stops_total",
			Help: "Exits not reported because Steam deleted or stopped the row within the settle window.",
		}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "steam_exporter_exit_watch_registry_reads_total",
			Help: "Reads of Steam's registry by the exit watch.",
		}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "steam_exporter_exit_watch_registry_read_errors_total",
			Help: "Reads of Steam's registry by the exit watch that failed.",
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "steam_exporter_exit_watch_sync_duration_seconds",
			Help:    "Time taken to bring the exit watch in line with Steam's registry.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	for _, r := range []string{ReasonExited, ReasonDead, ReasonZombie, ReasonPIDReused} {
		m.exits.WithLabelValues(r)
	}
	return m
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.watched, m.exits, m.stopped, m.reads, m.readErrors, m.syncSeconds}
}
