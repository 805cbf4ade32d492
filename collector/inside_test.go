package collector

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// serveStats answers /stats as handler does and returns its port.
func serveStats(t *testing.T, handler http.HandlerFunc) int {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// Inside reads /stats only of deployments that answered their probe, keeps
// a process's namespace PID, and forgets deployments that stopped running;
// a 404 and a hung /stats are counted, bounded, and give no series.
func TestInside(t *testing.T) {
	proc, _ := procWithJVMs(t)
	if err := os.WriteFile(filepath.Join(proc, "100", "status"), []byte("Name:\tjava\nNSpid:\t100\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serving, err := os.ReadFile("../internal/scorestats/testdata/steam-serving.json")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{
		"serving":  serveStats(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(serving) }),
		"no-stats": serveStats(t, http.NotFound),
		"hung":     serveStats(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
	}
	readErrors := NewReadErrors()
	in := NewInside(proc, 200*time.Millisecond, readErrors, promslog.NewNopLogger())
	uid := uint32(os.Getuid())
	targets := []probe.Target{
		{ID: 1, Name: "serving", Port: ports["serving"], PID: 100, Started: 5, UID: uid},
		{ID: 2, Name: "no-stats", Port: ports["no-stats"], PID: 100, Started: 5, UID: uid},
		{ID: 3, Name: "hung", Port: ports["hung"], PID: 100, Started: 5, UID: uid},
		{ID: 4, Name: "not answering", Port: ports["serving"], PID: 100, Started: 5, UID: uid},
	}
	begin := time.Now()
	var outcomes []probe.Outcome
	for _, tgt := range targets {
		r := probe.Result{Success: tgt.ID != 4}
		in.Read(context.Background(), tgt, r)
		outcomes = append(outcomes, probe.Outcome{Target: tgt, Result: r})
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("reading took %s: the hung /stats was not bounded", took)
	}
	got := in.Of(outcomes)
	if len(got) != 4 {
		t.Fatalf("Of = %+v, want the 4 deployments", got)
	}
	for _, d := range got {
		if d.NSPID != 7 || d.JVM == nil || d.JVM.ThreadsLive == 0 {
			t.Errorf("%s: NSPID %d, JVM %+v, want NSPID 7's counters", d.Name, d.NSPID, d.JVM)
		}
		if wantStats := d.Name == "serving"; (d.Stats != nil) != wantStats {
			t.Errorf("%s: stats %+v, want some: %v", d.Name, d.Stats, wantStats)
		}
	}
	want := `
# HELP steam_exporter_deployment_read_errors_total Failed reads of a deployment's /stats page or JVM performance counters, by source and reason (no_stats: a war without /stats).
# TYPE steam_exporter_deployment_read_errors_total counter
steam_exporter_deployment_read_errors_total{reason="no_stats",source="stats"} 1
steam_exporter_deployment_read_errors_total{reason="timeout",source="stats"} 1
`
	if err := testutil.CollectAndCompare(readErrors, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	// Deployment 1 restarted (another start time, not read yet), 2 stopped.
	outcomes[0].Started = 6
	if got := in.Of(append(outcomes[:1], outcomes[2:]...)); len(got) != 2 || got[0].ID != "3" || got[1].ID != "4" {
		t.Errorf("after a restart and a stop: %+v, want deployments 3 and 4", got)
	}
	if _, ok := in.latest[2]; ok {
		t.Error("the stopped deployment is still remembered")
	}
}

// BenchmarkInsideCollect is a scrape's JVM and traffic series of 1000
// deployments: 31 series each, more than the rest of the exposition.
func BenchmarkInsideCollect(b *testing.B) {
	captured, err := os.ReadFile("../internal/hsperf/testdata/jdk17-GarbageFirst.hsperf")
	if err != nil {
		b.Fatal(err)
	}
	counters, err := hsperf.Parse(captured)
	if err != nil {
		b.Fatal(err)
	}
	j, err := counters.JVM()
	if err != nil {
		b.Fatal(err)
	}
	js, err := os.ReadFile("../internal/scorestats/testdata/steam-serving.json")
	if err != nil {
		b.Fatal(err)
	}
	s, err := scorestats.Decode(js)
	if err != nil {
		b.Fatal(err)
	}
	ds := make([]RunningDeployment, 1000)
	for i := range ds {
		ds[i] = RunningDeployment{ID: strconv.Itoa(i), Name: fmt.Sprintf("scorer-%d", i), JVM: &j, Stats: s}
	}
	reg := prometheus.NewRegistry()
	deployments := func() []RunningDeployment { return ds }
	reg.MustRegister(NewJVMCollector(deployments), NewTrafficCollector(deployments))
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil || len(mfs) == 0 {
			b.Fatal(err)
		}
	}
}
