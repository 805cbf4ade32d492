// Package collector publishes, at every scrape and without caching, whether
// each deployment of a Steam home is up and what its verified java costs.
package collector

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Collector is a prometheus.Collector for the deployments of one Steam home.
type Collector struct {
	observer  *observe.Observer
	statePath string
	logger    *slog.Logger

	up, status, cpu, resident, virtual, startTime, info, restarts *prometheus.Desc
	scrapeSuccess, scrapeDuration, stateScrapeSuccess             *prometheus.Desc
	backupLastSuccess                                             *prometheus.Desc
	statusPairs                                                   []*dto.LabelPair // in steam.Statuses' order
	userPair, systemPair                                          *dto.LabelPair   // cpu's mode
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a collector of reg's deployments, their processes through in,
// and restarts and backups from the state database at statePath (if any).
func New(reg *steam.Registry, in *procid.Inspector, statePath string, logger *slog.Logger) *Collector {
	deployment := []string{"deployment_id", "deployment"}
	var statusPairs []*dto.LabelPair
	for _, s := range steam.Statuses {
		statusPairs = append(statusPairs, labelPair("status", s))
	}
	return &Collector{
		statusPairs: statusPairs,
		userPair:    labelPair("mode", "user"),
		systemPair:  labelPair("mode", "system"),
		observer:    observe.New(reg, in),
		statePath:   statePath,
		logger:      logger,

		up: desc("deployment", "up",
			"Whether the deployment's recorded process is alive and verified to be its java (1) or not (0).", deployment...),
		status: desc("deployment", "status",
			"What became of the deployment's recorded process: 1 for the current status, 0 for the others.",
			append(deployment, "status")...),
		cpu: desc("deployment", "cpu_seconds_total",
			"CPU time of the deployment's verified process, by mode (user, system), as node_exporter's node_cpu_seconds_total.",
			append(deployment, "mode")...),
		resident: desc("deployment", "resident_memory_bytes",
			"Resident memory of the deployment's verified process.", deployment...),
		virtual: desc("deployment", "virtual_memory_bytes",
			"Virtual memory of the deployment's verified process.", deployment...),
		startTime: desc("deployment", "start_time_seconds",
			"Start time of the deployment's verified process since the Unix epoch.", deployment...),
		info: desc("deployment", "info",
			"What Steam's registry records about the deployment; problem says why it cannot be verified, if it cannot.",
			append(deployment, "model_id", "model", "project", "port", "address", "state", "war", "problem")...),
		restarts: desc("deployment", "restarts_total",
			"Successful restarts of the deployment by steam-overseer's remediator.", deployment...),
		scrapeSuccess: desc("exporter", "scrape_success",
			"Whether Steam's registry could be read at this scrape."),
		scrapeDuration: desc("exporter", "scrape_duration_seconds",
			"How long this scrape of Steam's registry and processes took."),
		stateScrapeSuccess: desc("exporter", "state_scrape_success",
			"Whether steam-overseer's state database could be read at this scrape (1 also when it does not exist yet)."),
		backupLastSuccess: desc("backup", "last_success_timestamp_seconds",
			"When the last successful steam-overseer backup of the Steam home finished, since the Unix epoch; absent before the first."),
	}
}

// Observer is the collector's observation path, to share with the prober.
func (c *Collector) Observer() *observe.Observer { return c.observer }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.status, c.cpu, c.resident, c.virtual, c.startTime,
		c.info, c.restarts, c.scrapeSuccess, c.scrapeDuration, c.stateScrapeSuccess, c.backupLastSuccess} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) { send(ch, c.CollectInBatches) }

// CollectInBatches hands over one family at a time (no family in two
// batches), so that each can be written and dropped before the next is
// built; an unreadable registry costs the deployment series, never the scrape.
func (c *Collector) CollectInBatches(emit func([]prometheus.Metric)) {
	begin := time.Now()
	ctx := context.Background()

	observations, err := c.observer.All(ctx)
	if err != nil {
		c.logger.Error("Reading Steam's registry failed", "err", err)
	}
	st, stateErr := c.readState(ctx)
	if stateErr != nil {
		c.logger.Error("Reading the state database failed", "path", c.statePath, "err", stateErr)
	}
	took := time.Since(begin)

	labels := make([][]*dto.LabelPair, len(observations)) // deployment, deployment_id
	for i, o := range observations {
		if o.Process.Err != nil {
			c.logger.Debug("Cannot read a deployment's process", "deployment_id", o.ID, "pid", o.PID, "err", o.Process.Err)
		}
		labels[i] = deploymentPairs(o.IDString(), o.Name)
	}
	// family emits the series each observation's add returns, if any.
	family := func(add func(o observe.Observation, labels []*dto.LabelPair, ms []prometheus.Metric) []prometheus.Metric) {
		batch(emit, len(observations), func(i int, ms []prometheus.Metric) []prometheus.Metric {
			return add(observations[i], labels[i], ms)
		})
	}
	gauge := func(desc *prometheus.Desc, value func(o observe.Observation) float64, running bool) {
		family(func(o observe.Observation, labels []*dto.LabelPair, ms []prometheus.Metric) []prometheus.Metric {
			if running && !o.Running() {
				return ms
			}
			return append(ms, &series{desc: desc, valueType: prometheus.GaugeValue, value: value(o), labels: labels})
		})
	}
	gauge(c.up, func(o observe.Observation) float64 { return boolValue(o.Running()) }, false)
	family(func(o observe.Observation, labels []*dto.LabelPair, ms []prometheus.Metric) []prometheus.Metric {
		for i, s := range steam.Statuses {
			ms = append(ms, &series{desc: c.status, valueType: prometheus.GaugeValue, value: boolValue(s == o.Status),
				labels: []*dto.LabelPair{labels[0], labels[1], c.statusPairs[i]}})
		}
		return ms
	})
	family(func(o observe.Observation, labels []*dto.LabelPair, ms []prometheus.Metric) []prometheus.Metric {
		return append(ms, &series{desc: c.info, valueType: prometheus.GaugeValue, value: 1, labels: c.infoPairs(o.Deployment, labels)})
	})
	family(func(o observe.Observation, labels []*dto.LabelPair, ms []prometheus.Metric) []prometheus.Metric {
		if !o.Running() {
			return ms
		}
		return append(ms,
			&series{desc: c.cpu, valueType: prometheus.CounterValue, value: o.Process.UserCPUSeconds,
				labels: []*dto.LabelPair{labels[0], labels[1], c.userPair}},
			&series{desc: c.cpu, valueType: prometheus.CounterValue, value: o.Process.SystemCPUSeconds,
				labels: []*dto.LabelPair{labels[0], labels[1], c.systemPair}})
	})
	gauge(c.resident, func(o observe.Observation) float64 { return float64(o.Process.ResidentBytes) }, true)
	gauge(c.virtual, func(o observe.Observation) float64 { return float64(o.Process.VirtualBytes) }, true)
	gauge(c.startTime, func(o observe.Observation) float64 { return o.Process.StartTime }, true)
	if stateErr == nil {
		family(func(o observe.Observation, labels []*dto.LabelPair, ms []prometheus.Metric) []prometheus.Metric {
			return append(ms, &series{desc: c.restarts, valueType: prometheus.CounterValue,
				value: float64(st.restarts[o.ID]), labels: labels})
		})
	}

	exporter := []prometheus.Metric{
		prometheus.MustNewConstMetric(c.scrapeSuccess, prometheus.GaugeValue, boolValue(err == nil)),
		prometheus.MustNewConstMetric(c.stateScrapeSuccess, prometheus.GaugeValue, boolValue(stateErr == nil)),
	}
	if st.backupOK {
		exporter = append(exporter, prometheus.MustNewConstMetric(c.backupLastSuccess, prometheus.GaugeValue,
			float64(st.lastBackup.UnixNano())/1e9))
	}
	emit(append(exporter, prometheus.MustNewConstMetric(c.scrapeDuration, prometheus.GaugeValue, took.Seconds())))
}

// infoPairs are d's info labels, sorted by name as the Desc's.
func (c *Collector) infoPairs(d steam.Deployment, deployment []*dto.LabelPair) []*dto.LabelPair {
	return []*dto.LabelPair{
		labelPair("address", validUTF8(d.Address)),
		deployment[0],
		deployment[1],
		labelPair("model", validUTF8(d.ModelName)),
		labelPair("model_id", strconv.FormatInt(d.ModelID, 10)),
		labelPair("port", strconv.FormatInt(d.Port, 10)),
		labelPair("problem", d.Problem),
		labelPair("project", validUTF8(d.ProjectName)),
		labelPair("state", validUTF8(d.State)),
		labelPair("war", validUTF8(d.War)),
	}
}

type stateReading struct {
	restarts   map[int64]uint64
	lastBackup time.Time
	backupOK   bool // a successful backup exists
}

// readState reads restart counts and the last successful backup; a missing
// state database means none so far, not an error.
func (c *Collector) readState(ctx context.Context) (stateReading, error) {
	db, err := state.OpenReadOnly(c.statePath)
	if errors.Is(err, state.ErrNoState) {
		return stateReading{}, nil
	}
	if err != nil {
		return stateReading{}, err
	}
	defer db.Close()
	var r stateReading
	if r.restarts, err = db.RestartCounts(ctx); err != nil {
		return stateReading{}, err
	}
	if r.lastBackup, r.backupOK, err = db.LastBackupSuccess(ctx); err != nil {
		return stateReading{}, err
	}
	return r, nil
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
