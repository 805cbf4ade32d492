package collector_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/collector.prom from this run")

// TestGolden scrapes a Steam home whose rows point at the processes of
// testdata/proc and compares the exposition with testdata/collector.prom.
// Regenerate it with: go test ./collector -run TestGolden -update
func TestGolden(t *testing.T) {
	h := testkit.NewHome(t)
	var churn steam.Deployment
	for _, row := range []struct {
		spec testkit.Spec
		pid  int
	}{
		{testkit.Spec{Name: "fraud", LogicalName: "fraud", Port: 8081}, 4244},              // sleep: pid_reused
		{testkit.Spec{Name: "idle", LogicalName: "idle", Port: 8082}, 0},                   // no_pid
		{testkit.Spec{Name: "churn", LogicalName: "churn", Port: 8080}, 4242},              // model 3: running
		{testkit.Spec{Name: "zombie", LogicalName: "zombie", Port: 8083}, 4243},            // zombie
		{testkit.Spec{Name: "gone", LogicalName: "gone", Port: 8084}, 4299},                // dead
		{testkit.Spec{Name: "nowar", LogicalName: "nowar", Port: 8085, NoWar: true}, 4242}, // misconfigured
	} {
		d := h.Add(row.spec)
		if row.pid == 4242 && !row.spec.NoWar {
			churn = d
		}
		h.Exec("UPDATE service SET process_id = ? WHERE id = ?", row.pid, d.ID)
	}
	in, err := procid.NewInspector(testkit.ProcFixture(t, h.Home.Dir))
	if err != nil {
		t.Fatal(err)
	}
	c := collector.New(steam.NewRegistry(h.Home), in, h.Home.StatePath(), promslog.NewNopLogger())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		switch mf.GetName() {
		case "steam_exporter_scrape_duration_seconds":
			continue // a fixture cannot fix it
		case "steam_deployment_start_time_seconds":
			// gopsutil adds this host's boot time to the fixture's ticks.
			id, _ := churn.Identity()
			want := in.Inspect(4242, id).StartTime
			if n := len(mf.GetMetric()); n != 1 || mf.GetMetric()[0].GetGauge().GetValue() != want {
				t.Errorf("start time: %v, want one series of %v", mf.GetMetric(), want)
			}
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.ReplaceAll(buf.String(), h.Home.Dir, testkit.ProcFixtureHome)

	golden := filepath.Join("testdata", "collector.prom")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("exposition differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	if !regexp.MustCompile(`steam_deployment_up\{deployment="churn",deployment_id="3"\} 1`).MatchString(got) {
		t.Error("the fixture's running java is not up")
	}
}
