package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/probe"
)

// ProbeCollector publishes the background prober's latest results: whether
// each running deployment answered its probe, how fast and when. Reading
// them never waits on a probe, so a scrape is as fast with hung deployments
// as without; how old a result is shows in its timestamp series.
type ProbeCollector struct {
	prober     *probe.Prober
	startGrace time.Duration

	success, duration, timestamp, failures, lastSuccess, grace *prometheus.Desc
}

var _ prometheus.Collector = (*ProbeCollector)(nil)

// NewProbeCollector returns a collector of p's results. startGrace is the
// exporter's --probe.start-grace, published for the alert that ignores
// deployments younger than it that never answered.
func NewProbeCollector(p *probe.Prober, startGrace time.Duration) *ProbeCollector {
	deployment := []string{"deployment_id", "deployment"}
	return &ProbeCollector{
		prober:     p,
		startGrace: startGrace,
		success: desc("deployment", "probe_success",
			"Whether the deployment's verified running java answered its last HTTP probe with 200 within the timeout.", deployment...),
		duration: desc("deployment", "probe_duration_seconds",
			"How long the deployment's last HTTP probe took.", deployment...),
		timestamp: desc("deployment", "probe_timestamp_seconds",
			"When the deployment's last HTTP probe was taken, since the Unix epoch.", deployment...),
		failures: desc("deployment", "probe_failures",
			"Consecutive failed HTTP probes of the deployment's current process; 0 after a success.", deployment...),
		lastSuccess: desc("deployment", "probe_last_success_timestamp_seconds",
			"When the deployment's current process last answered its HTTP probe with 200, since the Unix epoch; "+
				"absent until it has answered once (its start grace then ends).", deployment...),
		grace: desc("exporter", "probe_start_grace_seconds",
			"How long a started deployment that has not answered yet may fail its probes before alerts consider it unresponsive (--probe.start-grace)."),
	}
}

// Describe implements prometheus.Collector.
func (c *ProbeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.success, c.duration, c.timestamp, c.failures, c.lastSuccess, c.grace} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ProbeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.grace, prometheus.GaugeValue, c.startGrace.Seconds())
	for _, o := range c.prober.Latest() {
		// Names come from rows anyone may have edited; see collectDeployment.
		labels := []string{strconv.FormatInt(o.ID, 10), validUTF8(o.Name)}
		ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, boolValue(o.Success), labels...)
		ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, o.Duration.Seconds(), labels...)
		ch <- prometheus.MustNewConstMetric(c.timestamp, prometheus.GaugeValue,
			float64(o.Time.UnixNano())/1e9, labels...)
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.GaugeValue, float64(o.Failures), labels...)
		if !o.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue,
				float64(o.LastSuccess.UnixNano())/1e9, labels...)
		}
	}
}
