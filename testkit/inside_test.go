package testkit_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/internal/hsperf"
	"github.com/steam-overseer/steam-overseer/internal/scorestats"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// readJVM reads the counters of the real JVM pid as the exporter will.
func readJVM(t *testing.T, pid int) hsperf.JVM {
	t.Helper()
	nsPID, err := hsperf.NamespacePID("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	j, err := hsperf.ReadJVM("/proc", pid, nsPID, uint32(os.Getuid()))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// The war's /stats has the real StatsServlet's shape (the strict decoder
// takes it) and counts the predictions made; its JVM's counters are found
// and read as the exporter reads them.
func TestStatsAndCountersOfARealDeployment(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	d, p := testkit.RunJetty(t, h, testkit.Spec{Name: "inside"}, jetty.War{})
	base := fmt.Sprintf("http://127.0.0.1:%d", d.Port)
	const gets, posts = 7, 4
	for i := 0; i < gets+posts; i++ {
		var resp *http.Response
		var err error
		if i < gets {
			resp, err = client.Get(base + "/predict?x=1")
		} else {
			resp, err = client.Post(base+"/predict", "application/json", strings.NewReader(`{"x":1}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := scorestats.Fetch(ctx, client, base)
	if err != nil {
		t.Fatal(err)
	}
	if s.Prediction.Count != gets+posts || s.Get.Count != gets || s.Post.Count != posts ||
		s.LastTime < s.StartTime || s.WarmUpCount != 5 {
		t.Errorf("/stats = %+v, want %d GET and %d POST predictions", s, gets, posts)
	}
	j := readJVM(t, p.Pid)
	if j.ThreadsLive < 5 || j.Heap.Used <= 0 || j.Heap.Max <= j.Heap.Used || j.ClassesLoaded < 1000 {
		t.Errorf("Jetty's JVM: %+v", j)
	}
}

// A fill_heap war on a 64 MiB heap stays where the JVM alerts look: the old
// generation over 90% full even after collections, and collecting more than
// half the time.
func TestFillHeapWarKeepsTheCollectorsBusy(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	h.JavaEnv = []string{"JDK_JAVA_OPTIONS=-Xmx64m"}
	_, p := testkit.RunJetty(t, h, testkit.Spec{Name: "full"}, jetty.War{Mode: jetty.ModeFillHeap})
	if j := readJVM(t, p.Pid); j.Heap.Max > 70<<20 {
		t.Fatalf("heap max %.0f: JDK_JAVA_OPTIONS=-Xmx64m was not taken", j.Heap.Max)
	}
	// Filling takes a few seconds; the alerts' thresholds (alerts.yml
	// SteamDeploymentJVMHeapFull, SteamDeploymentJVMGCThrashing) then hold.
	deadline := time.Now().Add(20 * time.Second)
	for {
		j := readJVM(t, p.Pid)
		if j.Old.Used/j.Old.Max >= 0.9 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	first, begin := readJVM(t, p.Pid), time.Now()
	lowest := 1.0
	for time.Since(begin) < 5*time.Second {
		j := readJVM(t, p.Pid)
		lowest = min(lowest, j.Old.Used/j.Old.Max)
		time.Sleep(100 * time.Millisecond)
	}
	last, wall := readJVM(t, p.Pid), time.Since(begin).Seconds()
	var collections int64
	var gcSeconds float64
	for i := range last.Collectors {
		collections += last.Collectors[i].Collections - first.Collectors[i].Collections
		gcSeconds += last.Collectors[i].Seconds - first.Collectors[i].Seconds
	}
	t.Logf("old generation ≥ %.3f of max, %d collections, GC %.2fs of %.2fs", lowest, collections, gcSeconds, wall)
	if lowest < 0.9 || collections == 0 {
		t.Errorf("old generation fell to %.3f of max with %d collections, want ≥ 0.9 and some\n%s", lowest, collections, p.Output())
	}
	if gcSeconds/wall < 0.5 {
		t.Errorf("GC took %.2fs of %.2fs, want more than half", gcSeconds, wall)
	}
}
