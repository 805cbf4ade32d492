package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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
func (c *ProbeCollector) Collect(ch chan<- prometheus.Metric) { send(ch, c.CollectInBatches) }

// CollectInBatches hands over one family at a time, as Collector does: five
// families of 1000 deployments at once were most of a scrape's heap.
func (c *ProbeCollector) CollectInBatches(emit func([]prometheus.Metric)) {
	emit([]prometheus.Metric{prometheus.MustNewConstMetric(c.grace, prometheus.GaugeValue, c.startGrace.Seconds())})
	outcomes := c.prober.Latest()
	labels := make([][]*dto.LabelPair, len(outcomes))
	for i, o := range outcomes {
		labels[i] = deploymentPairs(strconv.FormatInt(o.ID, 10), o.Name)
	}
	seconds := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
	for _, f := range []struct {
		desc  *prometheus.Desc
		value func(o probe.Outcome) (v float64, ok bool)
	}{
		{c.success, func(o probe.Outcome) (float64, bool) { return boolValue(o.Success), true }},
		{c.duration, func(o probe.Outcome) (float64, bool) { return o.Duration.Seconds(), true }},
		{c.timestamp, func(o probe.Outcome) (float64, bool) { return seconds(o.Time), true }},
		{c.failures, func(o probe.Outcome) (float64, bool) { return float64(o.Failures), true }},
		{c.lastSuccess, func(o probe.Outcome) (float64, bool) { return seconds(o.LastSuccess), !o.LastSuccess.IsZero() }},
	} {
		batch(emit, len(outcomes), func(i int, ms []prometheus.Metric) []prometheus.Metric {
			if v, ok := f.value(outcomes[i]); ok {
				ms = append(ms, &series{desc: f.desc, valueType: prometheus.GaugeValue, value: v, labels: labels[i]})
			}
			return ms
		})
	}
}
