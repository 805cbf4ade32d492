//go:build killbench

package e2e

// TestKillBench is the kill benchmark scripts/bench-kill runs (not CI: 20
// kills on real Jetty take minutes): the shipped files and timings, the exit
// watch on as the Debian default file turns it on, and -kill.count
// deployments each SIGKILLed once (a second kill inside the remediator's
// 60 s watch window would be a crash loop, rightly backed off). It prints
// kill → serving, the deployment's own start (its new java's exec → first
// /ping 200) and their difference, kill → the new java's exec: what the
// loop adds to the start.

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/testkit"
)

var (
	killCount = flag.Int("kill.count", 20, "deployments TestKillBench kills, each once")
	killJetty = flag.Bool("kill.jetty", false, "TestKillBench's deployments run on real Jetty, not the fake java")
)

func TestKillBench(t *testing.T) {
	t.Parallel()
	var h *testkit.Home
	var env []string
	var ids []int64
	if *killJetty {
		h = testkit.NewJettyHome(t)
		env = testkit.JettyEnv(t, h)
		// Started a few at a time, as Steam's users would.
		for i := 0; i < *killCount; i += 4 {
			var ps []*testkit.JettyProcess
			var batch []int64
			for j := i; j < min(i+4, *killCount); j++ {
				name := fmt.Sprintf("model%02d", j+1)
				d := testkit.AddJetty(t, h, testkit.Spec{Name: name, LogicalName: name}, jetty.War{})
				ps = append(ps, testkit.LaunchJetty(t, h, d))
				batch = append(batch, d.ID)
			}
			for k, id := range batch {
				ps[k].Record(t, h, h.Deployment(id))
			}
			ids = append(ids, batch...)
		}
	} else {
		h = testkit.NewHome(t)
		env = append(os.Environ(), "PATH="+filepath.Dir(h.Java)+string(os.PathListSeparator)+os.Getenv("PATH"))
		for i := range *killCount {
			name := fmt.Sprintf("model%02d", i+1)
			d, _ := h.Run(testkit.Spec{Name: name, LogicalName: name})
			ids = append(ids, d.ID)
		}
	}
	s := startWatchStack(t, h, env)
	s.waitWatched(t, len(ids))
	// Let the JVMs' start and Prometheus' first scrapes pass.
	time.Sleep(5 * time.Second)

	var toServing, ownStart, toExec []time.Duration
	for _, id := range ids {
		killed, old := s.kill(t, id)
		serving, pid := s.healed(t, id, old, 2*time.Minute)
		exec := processStart(t, pid)
		toServing = append(toServing, serving.Sub(killed))
		ownStart = append(ownStart, serving.Sub(exec))
		toExec = append(toExec, exec.Sub(killed))
		t.Logf("deployment %d: kill → serving %s, own start %s, kill → exec %s", id,
			serving.Sub(killed).Round(time.Millisecond), serving.Sub(exec).Round(time.Millisecond), exec.Sub(killed).Round(time.Millisecond))
		// The restarted JVM's warm-up is not the next kill's.
		s.waitWatched(t, len(ids))
		time.Sleep(time.Second)
	}
	java := "the fake java"
	if *killJetty {
		java = "real Jetty 9.4"
	}
	row := func(name string, ds []time.Duration) string {
		return fmt.Sprintf("  %-40s p50 %8s  p95 %8s  max %8s", name, percentile(ds, 50), percentile(ds, 95), percentile(ds, 100))
	}
	report := strings.Join([]string{
		fmt.Sprintf("kill benchmark: %d SIGKILLs on %s, shipped files and timings, exit watch settle %s", len(ids), java, s.settle),
		row("kill → serving", toServing),
		row("own start (new java's exec → /ping 200)", ownStart),
		row("kill → serving − own start (kill → exec)", toExec),
	}, "\n")
	fmt.Println(report)
}

// processStart is when pid was started, from /proc (10 ms steps, counted
// on the boot-time clock).
func processStart(t *testing.T, pid int) time.Time {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var sinceBoot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &sinceBoot); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const clockTicks = 100 // USER_HZ on Linux
	return now.Add(-time.Duration(sinceBoot.Nano()) + time.Duration(ticks)*time.Second/clockTicks)
}
