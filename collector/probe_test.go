package collector_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// newProber returns a prober of h's running deployments.
func newProber(t testing.TB, h *testkit.Home, cfg probe.Config) *probe.Prober {
	t.Helper()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	return probe.NewProber(probe.RunningTargets(steam.NewRegistry(h.Home), in), cfg, promslog.NewNopLogger())
}

// probeValues gathers c and returns the value of metric name per
// deployment_id.
func probeValues(t *testing.T, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "deployment_id" {
					values[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return values
}

func TestProbeCollectorExposition(t *testing.T) {
	h := testkit.NewHome(t)
	h.Run(testkit.Spec{Name: "serving", LogicalName: "serving"})
	const slowness = 200 * time.Millisecond
	h.Run(testkit.Spec{Name: "slow", LogicalName: "slow", Behaviour: testkit.Behaviour{PingDelay: slowness}})
	_, stopped := h.Run(testkit.Spec{Name: "stopped", LogicalName: "stopped"})
	_, dead := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	h.Add(testkit.Spec{Name: "never-started", LogicalName: "never-started"})
	testkit.Kill(t, dead)
	testkit.Freeze(t, stopped)

	p := newProber(t, h, probe.Config{Timeout: time.Second})
	c := collector.NewProbeCollector(p, 90*time.Second)
	begin := time.Now()
	for range 2 {
		p.Round(context.Background())
	}

	// Only the three running deployments are published; the stopped one
	// failed both rounds.
	const grace = `
# HELP steam_exporter_probe_start_grace_seconds How long a started deployment that has not answered yet may fail its probes before alerts consider it unresponsive (--probe.start-grace).
# TYPE steam_exporter_probe_start_grace_seconds gauge
steam_exporter_probe_start_grace_seconds 90
`
	expected := func(stoppedSuccess, stoppedFailures int) string {
		return grace + fmt.Sprintf(`
# HELP steam_deployment_probe_failures Consecutive failed HTTP probes of the deployment's current process; 0 after a success.
# TYPE steam_deployment_probe_failures gauge
steam_deployment_probe_failures{deployment="serving",deployment_id="1"} 0
steam_deployment_probe_failures{deployment="slow",deployment_id="2"} 0
steam_deployment_probe_failures{deployment="stopped",deployment_id="3"} %d
# HELP steam_deployment_probe_success Whether the deployment's verified running java answered its last HTTP probe with 200 within the timeout.
# TYPE steam_deployment_probe_success gauge
steam_deployment_probe_success{deployment="serving",deployment_id="1"} 1
steam_deployment_probe_success{deployment="slow",deployment_id="2"} 1
steam_deployment_probe_success{deployment="stopped",deployment_id="3"} %d
`, stoppedFailures, stoppedSuccess)
	}
	names := []string{"steam_deployment_probe_success", "steam_deployment_probe_failures", "steam_exporter_probe_start_grace_seconds"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected(0, 2)), names...); err != nil {
		t.Error(err)
	}
	durations := probeValues(t, c, "steam_deployment_probe_duration_seconds")
	if d := durations["2"]; d < slowness.Seconds() || d >= 1 {
		t.Errorf("slow deployment's probe duration %gs, want at least %s and under the 1s timeout", d, slowness)
	}
	if d := durations["3"]; d < 1 {
		t.Errorf("stopped deployment's probe duration %gs, want the 1s timeout", d)
	}
	for id, ts := range probeValues(t, c, "steam_deployment_probe_timestamp_seconds") {
		if sec := float64(begin.UnixNano()) / 1e9; ts < sec || ts > float64(time.Now().Unix()+1) {
			t.Errorf("deployment %s: probe timestamp %f, want one of the rounds since %f", id, ts, sec)
		}
	}

	// The stopped java never answered: its start grace still holds.
	if answered := probeValues(t, c, "steam_deployment_probe_last_success_timestamp_seconds"); len(answered) != 2 ||
		answered["1"] < float64(begin.Unix()) || answered["2"] < float64(begin.Unix()) {
		t.Errorf("last successes %v, want those of deployments 1 and 2 only, since %v", answered, begin)
	}

	if err := stopped.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	p.Round(context.Background())
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected(1, 0)), names...); err != nil {
		t.Errorf("after SIGCONT: %v", err)
	}
	if answered := probeValues(t, c, "steam_deployment_probe_last_success_timestamp_seconds"); answered["3"] < float64(begin.Unix()) {
		t.Errorf("last successes after SIGCONT %v, want one for deployment 3", answered)
	}
}

func TestProbeCollectorLint(t *testing.T) {
	h := testkit.NewHome(t)
	h.Run(testkit.Spec{Name: "serving", LogicalName: "serving"})
	p := newProber(t, h, probe.Config{})
	p.Round(context.Background())
	c := collector.NewProbeCollector(p, probe.DefaultStartGrace)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("%s: %s", pr.Metric, pr.Text)
	}
	if n := testutil.CollectAndCount(c); n != 6 {
		t.Errorf("%d series for one answering deployment, want 5 and the start grace", n)
	}
}

// Before any round, and with no running deployment, only the start grace
// is published.
func TestProbeCollectorNothingRunning(t *testing.T) {
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "never-started", LogicalName: "never-started"})
	p := newProber(t, h, probe.Config{})
	c := collector.NewProbeCollector(p, time.Minute)
	for round := range 2 {
		if n := testutil.CollectAndCount(c); n != 1 {
			t.Errorf("round %d: %d series, want only the start grace", round, n)
		}
		p.Round(context.Background())
	}
}
