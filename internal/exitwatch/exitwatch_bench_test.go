package exitwatch_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/shirou/gopsutil/v3/process"

	"github.com/steam-overseer/steam-overseer/internal/exitwatch"
	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

const benchDeployments = 1000

// BenchmarkWatch1000 watches 1000 live fake javas with Steam's argv.
// "idle" is one registry interval with nothing happening: cpu-s/op is the
// share of a core the watch takes (target < 0.01); rss-growth-bytes is the
// exporter's resident memory added by watching them all (target ≤ 2 MB).
// "kill" is one SIGKILL until the report, settle window included.
func BenchmarkWatch1000(b *testing.B) {
	h := testkit.NewHome(b)
	procs := h.StartAll(h.AddScorers(benchDeployments, 20000, testkit.Behaviour{Mode: "never_ready"}))

	in, err := procid.NewInspector("")
	if err != nil {
		b.Fatal(err)
	}
	self, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		b.Fatal(err)
	}
	// retained is the RSS once garbage is collected and returned to the
	// kernel, which the runtime does by itself within minutes (forced GC
	// every 2 min, then the scavenger): what the watch keeps, not the
	// transient garbage of verifying 1000 javas at once.
	var retained func() uint64
	rss := func() uint64 {
		m, err := self.MemoryInfo()
		if err != nil {
			b.Fatal(err)
		}
		return m.RSS
	}
	retained = func() uint64 {
		runtime.GC()
		debug.FreeOSMemory()
		return rss()
	}
	events := make(chan exitwatch.Event, benchDeployments)
	w, err := exitwatch.New(steam.NewRegistry(h.Home), observe.New(steam.NewRegistry(h.Home), in), func(ev exitwatch.Event) { events <- ev },
		promslog.NewNopLogger(), exitwatch.Options{})
	if err != nil {
		b.Fatal(err)
	}
	before := rss()
	retainedBefore := retained()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	testkit.Eventually(b, 60*time.Second, "every java watched", func() bool {
		return metric(b, w, "steam_exporter_exit_watch_processes") == benchDeployments
	})

	b.Run("idle", func(b *testing.B) {
		// Past the garbage collection of the start-up's burst.
		runtime.GC()
		time.Sleep(2 * exitwatch.DefaultInterval)
		cpu := cpuTime(b)
		for b.Loop() {
			time.Sleep(exitwatch.DefaultInterval)
		}
		b.ReportMetric((cpuTime(b)-cpu).Seconds()/float64(b.N), "cpu-s/op")
		b.ReportMetric(float64(int64(rss())-int64(before)), "rss-growth-bytes")
		b.ReportMetric(metric(b, w, "steam_exporter_exit_watch_registry_reads_total"), "registry-reads")
		b.ReportMetric(float64(int64(retained())-int64(retainedBefore)), "retained-growth-bytes")
	})
	b.Run("kill", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if i == len(procs) {
				b.Fatal("out of javas to kill")
			}
			if err := procs[i].Signal(syscall.SIGKILL); err != nil {
				b.Fatal(err)
			}
			if ev := <-events; !ev.Down || ev.PID != int64(procs[i].Pid) {
				b.Fatalf("got %+v after killing %d", ev, procs[i].Pid)
			}
			i++
		}
	})
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
