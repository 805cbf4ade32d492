package hsperf

import (
	"fmt"
	"strconv"
)

// Memory is one area or pool, in bytes.
type Memory struct {
	Used, Committed, Max float64
}

// Collector is one garbage collector as jstat's YGC/FGC/CGC columns show it.
type Collector struct {
	Name        string // HotSpot's own, e.g. "G1 young collection pauses"
	Collections int64
	Seconds     float64
}

// JVM is what the exporter publishes from one file.
type JVM struct {
	Heap, Old, Metaspace Memory
	Collectors           []Collector
	ThreadsLive          int64
	ThreadsDaemon        int64
	Safepoints           int64
	SafepointSeconds     float64
	ClassesLoaded        int64
}

// JVM derives heap, GC and thread figures the way jstat -gc does: a heap
// space is counted in its generation, times are ticks of sun.os.hrt.frequency.
func (c *Counters) JVM() (JVM, error) {
	var j JVM
	hz := c.Longs["sun.os.hrt.frequency"]
	if hz <= 0 {
		return j, fmt.Errorf("%w: sun.os.hrt.frequency %d", ErrCorrupt, hz)
	}
	seconds := func(ticks int64) float64 { return float64(ticks) / float64(hz) }
	for g := 0; ; g++ {
		gen := "sun.gc.generation." + strconv.Itoa(g) + "."
		committed, ok := c.Longs[gen+"capacity"]
		if !ok {
			if g == 0 {
				return j, fmt.Errorf("%w: no heap generations", ErrCorrupt)
			}
			break
		}
		var used int64
		for s := 0; ; s++ {
			u, ok := c.Longs[gen+"space."+strconv.Itoa(s)+".used"]
			if !ok {
				break
			}
			used += u
		}
		maxBytes := float64(c.Longs[gen+"maxCapacity"])
		j.Heap.Used += float64(used)
		j.Heap.Committed += float64(committed)
		// G1's generations share one heap: each may grow to all of it.
		if c.Strings["sun.gc.policy.name"] == "GarbageFirst" {
			j.Heap.Max = max(j.Heap.Max, maxBytes)
		} else {
			j.Heap.Max += maxBytes
		}
		if c.Strings[gen+"name"] == "old" {
			j.Old = Memory{Used: float64(used), Committed: float64(committed), Max: maxBytes}
		}
	}
	j.Metaspace = Memory{
		Used:      float64(c.Longs["sun.gc.metaspace.used"]),
		Committed: float64(c.Longs["sun.gc.metaspace.capacity"]),
		Max:       float64(c.Longs["sun.gc.metaspace.maxCapacity"]),
	}
	for n := 0; ; n++ {
		col := "sun.gc.collector." + strconv.Itoa(n) + "."
		count, ok := c.Longs[col+"invocations"]
		if !ok {
			break
		}
		name := c.Strings[col+"name"]
		if name == "" {
			name = "collector " + strconv.Itoa(n)
		}
		j.Collectors = append(j.Collectors, Collector{Name: name, Collections: count, Seconds: seconds(c.Longs[col+"time"])})
	}
	j.ThreadsLive = c.Longs["java.threads.live"]
	j.ThreadsDaemon = c.Longs["java.threads.daemon"]
	j.Safepoints = c.Longs["sun.rt.safepoints"]
	j.SafepointSeconds = seconds(c.Longs["sun.rt.safepointTime"])
	// Classes from the CDS archive are counted apart, as jstat -class adds them.
	j.ClassesLoaded = c.Longs["java.cls.loadedClasses"] + c.Longs["java.cls.sharedLoadedClasses"] -
		c.Longs["java.cls.unloadedClasses"] - c.Longs["java.cls.sharedUnloadedClasses"]
	return j, nil
}
