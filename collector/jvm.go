package collector

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
)

// JVMCollector publishes heap, GC and threads from hsperfdata, as Inside
// last read them.
type JVMCollector struct {
	deployments RunningDeployments

	used, committed, max                    *prometheus.Desc
	poolUsed, poolCommitted, poolMax        *prometheus.Desc
	gc, safepoint, threads, daemon, classes *prometheus.Desc
}

var _ prometheus.Collector = (*JVMCollector)(nil)

// NewJVMCollector returns a collector of deployments' latest JVM counters.
func NewJVMCollector(deployments RunningDeployments) *JVMCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("steam", "deployment_jvm", name), help,
			append([]string{"deployment_id", "deployment"}, labels...), nil)
	}
	const areas = " area is heap, or nonheap: metaspace, the only non-heap pool HotSpot's counters have."
	const pool = " pool is old: the old generation, where what survives collections stays."
	return &JVMCollector{
		deployments: deployments,

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
		j := d.JVM
		if j == nil {
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
