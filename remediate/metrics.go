package remediate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	actions         *prometheus.CounterVec
	restartDuration prometheus.Histogram
	journalFailures prometheus.Counter
	retries         *prometheus.CounterVec
}

func newMetrics(e *Engine, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steam_remediator_actions_total",
			Help: "Remediations of deployments, by action taken and its result.",
		}, []string{"action", "result"}),
		restartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "steam_remediator_restart_duration_seconds",
			Help:    "Time from the notification that queued a deployment to its restarted service answering /ping.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120},
		}),
		journalFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "steam_remediator_journal_write_failures_total",
			Help: "Remediation actions that could not be written to the state database's journal, even after retries.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steam_remediator_retries_total",
			Help: "Remediations that failed on a transient error, by whether another try was scheduled or the tries were exhausted.",
		}, []string{"outcome"}),
	}
	m.retries.WithLabelValues("scheduled")
	m.retries.WithLabelValues("exhausted")
	for _, ar := range actionResults {
		m.actions.WithLabelValues(string(ar.action), string(ar.result))
	}
	queueLength := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "steam_remediator_queue_length",
		Help: "Deployments queued for remediation and waiting for a worker.",
	}, e.queueLength)
	gaveUp := &gaveUpCollector{e: e, desc: prometheus.NewDesc("steam_remediator_deployment_gave_up",
		"1 if the restart policy gave the deployment up: it is not started again until the window passes or an operator resets it.",
		[]string{"deployment_id"}, nil)}
	for _, c := range []prometheus.Collector{m.actions, m.restartDuration, m.journalFailures, m.retries, queueLength, gaveUp} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("remediate: registering metrics: %w", err)
		}
	}
	return m, nil
}

// gaveUpCollector reads the policy at every scrape: giving up lifts by itself
// when the window passes, with no event to update a gauge on.
type gaveUpCollector struct {
	e    *Engine
	desc *prometheus.Desc
}

var _ prometheus.Collector = (*gaveUpCollector)(nil)

func (c *gaveUpCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *gaveUpCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pols, err := c.e.state.RestartPolicies(ctx)
	if err != nil {
		c.e.logger.Error("Could not read restart policies for metrics", "err", err)
		return
	}
	if len(pols) == 0 {
		return
	}
	// Without the registry every row is published: a deployment given up
	// must not drop out of its alert while Steam's database is unreadable.
	exists, err := c.e.registry.IDs(ctx)
	if err != nil {
		c.e.logger.Error("Could not read Steam's deployments for metrics", "err", err)
	}
	now := c.e.cfg.Now()
	for _, p := range pols {
		if exists != nil && !exists[p.DeploymentID] {
			continue
		}
		v := 0.0
		if p.GaveUp(now) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, strconv.FormatInt(p.DeploymentID, 10))
	}
}
