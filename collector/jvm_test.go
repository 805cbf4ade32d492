package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// procWithJVMs lays hsperfdata files under a fake /proc: pid 100 (7 in its
// namespace) a captured G1 JVM, pid 101 a file that is no hsperfdata,
// pid 102 a JVM without a file (-XX:-UsePerfData); pid 103 has ended.
func procWithJVMs(t *testing.T) (string, []RunningDeployment) {
	t.Helper()
	proc := t.TempDir()
	captured, err := os.ReadFile("../internal/hsperf/testdata/jdk17-GarbageFirst.hsperf")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"100/root/tmp/hsperfdata_steam/7": captured,
		"101/root/tmp/hsperfdata_steam/9": []byte(strings.Repeat("not a JVM's counters ", 10)),
		"102/root/tmp/hsperfdata_steam":   nil,
	}
	for name, b := range files {
		p := filepath.Join(proc, name)
		if b == nil {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	uid := uint32(os.Getuid())
	return proc, []RunningDeployment{
		{ID: "1", Name: "churn", PID: 100, NSPID: 7, UID: uid},
		{ID: "2", Name: "garbled", PID: 101, NSPID: 9, UID: uid},
		{ID: "3", Name: "no-perfdata", PID: 102, NSPID: 12, UID: uid},
		{ID: "4", Name: "ended", PID: 103, NSPID: 13, UID: uid},
	}
}

func TestJVMCollector(t *testing.T) {
	proc, deployments := procWithJVMs(t)
	readErrors := NewReadErrors()
	in := NewInside(proc, time.Second, readErrors, promslog.NewNopLogger())
	// Two rounds: the second counts its failures again.
	for range 2 {
		for i := range deployments {
			deployments[i].JVM = in.readJVM(deployments[i])
		}
	}
	c := NewJVMCollector(func() []RunningDeployment { return deployments })
	compareGoldenAndLint(t, c, "testdata/jvm.prom")
	want := `
# HELP steam_exporter_deployment_read_errors_total Failed reads of a deployment's /stats page or JVM performance counters, by source and reason (no_stats: a war without /stats).
# TYPE steam_exporter_deployment_read_errors_total counter
steam_exporter_deployment_read_errors_total{reason="bad_magic",source="hsperfdata"} 2
steam_exporter_deployment_read_errors_total{reason="not_found",source="hsperfdata"} 2
`
	if err := testutil.CollectAndCompare(readErrors, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestTrafficCollector(t *testing.T) {
	var deployments []RunningDeployment
	for i, name := range []string{"steam-serving", "steam-fresh", "steam-no-python"} {
		b, err := os.ReadFile("../internal/scorestats/testdata/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		s, err := scorestats.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		deployments = append(deployments, RunningDeployment{ID: string(rune('1' + i)), Name: name, Stats: s})
	}
	// A deployment whose /stats could not be read has no series.
	deployments = append(deployments, RunningDeployment{ID: "9", Name: "hung"})
	c := NewTrafficCollector(func() []RunningDeployment { return deployments })
	compareGoldenAndLint(t, c, "testdata/traffic.prom")
}

// compareGoldenAndLint checks c's exposition against the golden file and
// its names and help against Prometheus' lint.
func compareGoldenAndLint(t *testing.T, c prometheus.Collector, golden string) {
	t.Helper()
	expected, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer expected.Close()
	if err := testutil.CollectAndCompare(c, expected); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestReadErrorsByStatsReason(t *testing.T) {
	r := NewReadErrors()
	r.AddStats(&scorestats.Error{Reason: scorestats.ReasonTooLarge, Err: os.ErrClosed})
	r.AddStats(&scorestats.Error{Reason: scorestats.ReasonNoStats, Err: scorestats.ErrNoStats})
	r.AddStats(&scorestats.Error{Reason: scorestats.ReasonNoStats, Err: scorestats.ErrNoStats})
	want := `
# HELP steam_exporter_deployment_read_errors_total Failed reads of a deployment's /stats page or JVM performance counters, by source and reason (no_stats: a war without /stats).
# TYPE steam_exporter_deployment_read_errors_total counter
steam_exporter_deployment_read_errors_total{reason="no_stats",source="stats"} 2
steam_exporter_deployment_read_errors_total{reason="too_large",source="stats"} 1
`
	if err := testutil.CollectAndCompare(r, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
