package collector

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
)

// JVMCollector publishes heap, GC and threads from hsperfdata, as Inside
// last read them.
type JVMCollector struct {
	deployments RunningDeployments

	used, committed, max                    *prometheus.Desc
	poolUsed, poolCommitted, poolMax        *prometheus.Desc
	gc, safepoint, threads, daemon, classes *prometheus.Desc
	heap, nonheap, old                      *dto.LabelPair // shared by every deployment's series
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
		heap:        labelPair("area", "heap"),
		nonheap:     labelPair("area", "nonheap"),
		old:         labelPair("pool", "old"),

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
		base := deploymentPairs(d.ID, d.Name)
		gauge := func(desc *prometheus.Desc, v float64, labels []*dto.LabelPair) {
			ch <- &series{desc: desc, valueType: prometheus.GaugeValue, value: v, labels: labels}
		}
		for _, m := range []struct {
			area *dto.LabelPair
			mem  hsperf.Memory
		}{{c.heap, j.Heap}, {c.nonheap, j.Metaspace}} {
			labels := withPairs(base, m.area)
			gauge(c.used, m.mem.Used, labels)
			gauge(c.committed, m.mem.Committed, labels)
			gauge(c.max, m.mem.Max, labels)
		}
		old := withPairs(base, c.old)
		gauge(c.poolUsed, j.Old.Used, old)
		gauge(c.poolCommitted, j.Old.Committed, old)
		gauge(c.poolMax, j.Old.Max, old)
		for _, g := range j.Collectors {
			ch <- &summary{desc: c.gc, count: uint64(g.Collections), sum: g.Seconds,
				labels: withPairs(base, labelPair("gc", validUTF8(g.Name)))}
		}
		ch <- &summary{desc: c.safepoint, count: uint64(j.Safepoints), sum: j.SafepointSeconds, labels: base}
		gauge(c.threads, float64(j.ThreadsLive), base)
		gauge(c.daemon, float64(j.ThreadsDaemon), base)
		gauge(c.classes, float64(j.ClassesLoaded), base)
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
