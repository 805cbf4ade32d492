package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// RunningDeployment is a deployment whose java the observation path verified.
type RunningDeployment struct {
	ID    string // the deployment_id label
	Name  string
	PID   int               // in the exporter's PID namespace
	NSPID int               // in the JVM's own, which names its hsperfdata file
	UID   uint32            // the JVM's user, who must own that file
	Stats *scorestats.Stats // the latest /stats answer; nil if none
	JVM   *hsperf.JVM       // its latest counters; nil if none
}

// RunningDeployments yields the deployments at a scrape.
type RunningDeployments func() []RunningDeployment

// Sources of steam_exporter_deployment_read_errors_total.
const (
	SourceStats      = "stats"
	SourceHSPerfData = "hsperfdata"
)

// ReadErrors counts failed reads of a deployment's own figures, which would
// otherwise just be missing.
type ReadErrors struct {
	vec *prometheus.CounterVec
}

var _ prometheus.Collector = (*ReadErrors)(nil)

// NewReadErrors returns the counter to register once and share.
func NewReadErrors() *ReadErrors {
	return &ReadErrors{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "steam",
		Subsystem: "exporter",
		Name:      "deployment_read_errors_total",
		Help:      "Failed reads of a deployment's /stats page or JVM performance counters, by source and reason (no_stats: a war without /stats).",
	}, []string{"source", "reason"})}
}

func (r *ReadErrors) Add(source, reason string) { r.vec.WithLabelValues(source, reason).Inc() }

// AddStats counts a failed /stats read by its reason.
func (r *ReadErrors) AddStats(err error) { r.Add(SourceStats, scorestats.Reason(err)) }

func (r *ReadErrors) Describe(ch chan<- *prometheus.Desc) { r.vec.Describe(ch) }
func (r *ReadErrors) Collect(ch chan<- prometheus.Metric) { r.vec.Collect(ch) }
