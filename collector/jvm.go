package collector

import (
	"errors"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
)

// JVMCollector publishes heap, GC and threads from hsperfdata, read at the
// scrape: a 32 KiB file, nothing a hung JVM could block.
type JVMCollector struct {
	deployments RunningDeployments
	readErrors  *ReadErrors
	proc        string
	logger      *slog.Logger

	used, committed, max                    *prometheus.Desc
	poolUsed, poolCommitted, poolMax        *prometheus.Desc
	gc, safepoint, threads, daemon, classes *prometheus.Desc
}

var _ prometheus.Collector = (*JVMCollector)(nil)

// NewJVMCollector reads under proc (/proc but in tests), counting failures in readErrors.
func NewJVMCollector(deployments RunningDeployments, readErrors *ReadErrors, proc string, logger *slog.Logger) *JVMCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("steam", "deployment_jvm", name), help,
			append([]string{"deployment_id", "deployment"}, labels...), nil)
	}
	const areas = " area is heap, or nonheap: metaspace, the only non-heap pool HotSpot's counters have."
	const pool = " pool is old: the old generation, where what survives collections stays."
	return &JVMCollector{
		deployments: deployments,
		readErrors:  readErrors,
		proc:        proc,
		logger:      logger,

		used:          desc("memory_used_bytes", "Memory the deployment's JVM uses."+areas, "area"),
		committed:     desc("memory_committed_bytes", "Memory the deployment's JVM has committed."+areas, "area"),
		max:           desc("memory_max_bytes", "Memory the deployment's JVM may grow to (heap: -Xmx)."+areas, "area"),
		poolUsed:      desc("memory_pool_used_bytes", "Memory a pool of the deployment's JVM uses."+pool, "pool"),
		poolCommitted: desc("memory_pool_committed_bytes", "Memory a pool of the deployment's JVM has committed."+pool, "pool"),
		poolMax:       desc("memory_pool_max_bytes", "Memory a pool of the deployment's JVM may grow to."+pool, "pool"),
		gc:            desc("gc_collection_seconds", "Stop-the-world collections of the deployment's JVM and their time, by HotSpot's name of the collector.", "gc"),
		safepoint:     desc("safepoint_seconds", "Safepoints of the deployment's JVM, all threads stopped, and their time."),
		threads:       desc("threads_current", "Live threads of the deployment's JVM."),
		daemon:        desc("threads_daemon", "Live daemon threads of the deployment's JVM."),
		classes:       desc("classes_currently_loaded", "Classes loaded in the deployment's JVM."),
	}
}

func (c *JVMCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.used, c.committed, c.max, c.poolUsed, c.poolCommitted, c.poolMax,
		c.gc, c.safepoint, c.threads, c.daemon, c.classes} {
		ch <- d
	}
}

func (c *JVMCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.deployments() {
		j, err := c.read(d)
		if err != nil {
			continue
		}
		labels := []string{d.ID, strings.ToValidUTF8(d.Name, "\uFFFD")}
		gauge := func(desc *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append(labels, extra...)...)
		}
		for _, m := range []struct {
			area string
			mem  hsperf.Memory
		}{{"heap", j.Heap}, {"nonheap", j.Metaspace}} {
			gauge(c.used, m.mem.Used, m.area)
			gauge(c.committed, m.mem.Committed, m.area)
			gauge(c.max, m.mem.Max, m.area)
		}
		gauge(c.poolUsed, j.Old.Used, "old")
		gauge(c.poolCommitted, j.Old.Committed, "old")
		gauge(c.poolMax, j.Old.Max, "old")
		for _, g := range j.Collectors {
			ch <- prometheus.MustNewConstSummary(c.gc, uint64(g.Collections), g.Seconds, nil, append(labels, g.Name)...)
		}
		ch <- prometheus.MustNewConstSummary(c.safepoint, uint64(j.Safepoints), j.SafepointSeconds, nil, labels...)
		gauge(c.threads, float64(j.ThreadsLive))
		gauge(c.daemon, float64(j.ThreadsDaemon))
		gauge(c.classes, float64(j.ClassesLoaded))
	}
}

func (c *JVMCollector) read(d RunningDeployment) (hsperf.JVM, error) {
	j, err := hsperf.ReadJVM(c.proc, d.PID, d.NSPID, d.UID)
	if err == nil {
		return j, nil
	}
	// A process that ended since the observation is no failure to read.
	if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, hsperf.ErrNotFound) {
		c.logger.Debug("Deployment's JVM is gone", "deployment_id", d.ID, "pid", d.PID, "err", err)
		return hsperf.JVM{}, err
	}
	c.logger.Warn("Cannot read a deployment's JVM counters", "deployment_id", d.ID, "pid", d.PID, "err", err)
	c.readErrors.Add(SourceHSPerfData, hsperfReason(err))
	return hsperf.JVM{}, err
}

func hsperfReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{hsperf.ErrNotFound, "not_found"},
		{hsperf.ErrTruncated, "truncated"},
		{hsperf.ErrBadMagic, "bad_magic"},
		{hsperf.ErrForeignEndian, "foreign_endian"},
		{hsperf.ErrVersion, "version"},
		{hsperf.ErrNotReady, "not_ready"},
		{hsperf.ErrCorrupt, "corrupt"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "io"
}
