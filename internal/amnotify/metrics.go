package amnotify

import "github.com/prometheus/client_golang/prometheus"

// The notifier's metrics follow Prometheus' own prometheus_notifications_*.
type metrics struct {
	sent    *prometheus.CounterVec
	errors  *prometheus.CounterVec
	dropped prometheus.Counter
	latency *prometheus.HistogramVec
	all     []prometheus.Collector
}

func newMetrics(n *Notifier) *metrics {
	am := []string{"alertmanager"}
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steam_exporter_notifications_total",
			Help: "Alerts sent to an Alertmanager, successfully or not.",
		}, am),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steam_exporter_notifications_errors_total",
			Help: "Alerts whose sending to an Alertmanager failed.",
		}, am),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "steam_exporter_notifications_dropped_total",
			Help: "Alerts dropped because an Alertmanager's queue was full.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "steam_exporter_notifications_latency_seconds",
			Help:    "Time taken by one POST of alerts to an Alertmanager.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, am),
	}
	queueLength := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "steam_exporter_notifications_queue_length",
		Help: "Alerts queued to be sent, summed over the Alertmanagers.",
	}, func() float64 {
		n.mu.Lock()
		defer n.mu.Unlock()
		var l int
		for _, a := range n.ams {
			l += len(a.order)
		}
		return float64(l)
	})
	queueCapacity := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "steam_exporter_notifications_queue_capacity",
		Help: "Capacity of the alert queues, summed over the Alertmanagers.",
	})
	queueCapacity.Set(float64(n.opts.QueueCapacity * len(n.ams)))
	alertmanagers := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "steam_exporter_notifications_alertmanagers",
		Help: "Alertmanagers alerts are sent to.",
	})
	alertmanagers.Set(float64(len(n.ams)))
	for _, a := range n.ams {
		m.sent.WithLabelValues(a.name)
		m.errors.WithLabelValues(a.name)
	}
	m.all = []prometheus.Collector{m.sent, m.errors, m.dropped, m.latency, queueLength, queueCapacity, alertmanagers}
	return m
}

// Describe implements prometheus.Collector.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range n.metrics.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for _, c := range n.metrics.all {
		c.Collect(ch)
	}
}

var _ prometheus.Collector = (*Notifier)(nil)
