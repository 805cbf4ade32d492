package collector_test

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// kernelView is what the kernel itself says about a process, read from
// /proc without gopsutil.
type kernelView struct {
	userSeconds, systemSeconds float64
	rssBytes                   float64
	startSecond                float64
}

// userHZ is the unit of /proc/<pid>/stat's times on every Linux Steam runs on.
const userHZ = 100

func readKernel(t *testing.T, pid int) kernelView {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, from field 3 (the state) on.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	field := func(n int) float64 {
		v, err := strconv.ParseFloat(fields[n-3], 64)
		if err != nil {
			t.Fatalf("field %d of %q: %v", n, stat, err)
		}
		return v
	}
	var k kernelView
	k.userSeconds, k.systemSeconds = field(14)/userHZ, field(15)/userHZ
	k.startSecond = bootTime(t) + field(22)/userHZ

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", line, err)
			}
			k.rssBytes = v * 1024
		}
	}
	if k.rssBytes == 0 {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return k
}

func bootTime(t *testing.T) float64 {
	t.Helper()
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(stat)) {
		if s, ok := strings.CutPrefix(line, "btime "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatal("no btime in /proc/stat")
	return 0
}

// TestCollectAgreesWithKernel compares the collector's figures for a busy
// deployment with the kernel's own: CPU within 0.05 s, VmRSS within 5%,
// start time within 1 s.
func TestCollectAgreesWithKernel(t *testing.T) {
	h := testkit.NewHome(t)
	d, proc := h.Run(testkit.Spec{Name: "busy", LogicalName: "busy"})
	// Make it spend measurable CPU and memory: serve pings for a while.
	client := &http.Client{Timeout: 2 * time.Second}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", d.Port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	c := newCollector(t, h, "")

	before := readKernel(t, proc.Pid)
	s := gather(t, c)
	after := readKernel(t, proc.Pid)

	value := func(name string) float64 {
		v, ok := s.value(t, name, d.ID)
		if !ok {
			t.Fatalf("no %s for deployment %d", name, d.ID)
		}
		return v
	}
	if total := before.userSeconds + before.systemSeconds; total < 0.1 {
		// A collector reporting 0 must not pass.
		t.Fatalf("the deployment spent only %.2f s of CPU; too little to compare", total)
	}
	cpu := map[string]float64{}
	for _, smp := range s.of("steam_deployment_cpu_seconds_total", d.ID) {
		cpu[smp.labels["mode"]] = smp.value
	}
	for _, m := range []struct {
		mode          string
		before, after float64
	}{
		{"user", before.userSeconds, after.userSeconds},
		{"system", before.systemSeconds, after.systemSeconds},
	} {
		if v, ok := cpu[m.mode]; !ok || v < m.before-0.05 || v > m.after+0.05 {
			t.Errorf("CPU mode=%q %.3f s (present %v), kernel %.3f..%.3f s", m.mode, v, ok, m.before, m.after)
		}
	}
	rss := value("steam_deployment_resident_memory_bytes")
	if lo, hi := min(before.rssBytes, after.rssBytes)*0.95, max(before.rssBytes, after.rssBytes)*1.05; rss < lo || rss > hi {
		t.Errorf("RSS %.0f bytes, kernel's VmRSS %.0f..%.0f", rss, before.rssBytes, after.rssBytes)
	}
	if start := value("steam_deployment_start_time_seconds"); math.Abs(start-before.startSecond) > 1 {
		t.Errorf("start time %.2f, kernel %.2f", start, before.startSecond)
	}
}
