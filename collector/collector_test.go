package collector_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// newCollector returns a collector for h whose registry gives up on a
// locked database after 100 ms instead of 5 s.
func newCollector(t testing.TB, h *testkit.Home, statePath string) *collector.Collector {
	t.Helper()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	reg := steam.NewRegistry(h.Home)
	reg.BusyTimeout = 100 * time.Millisecond
	if statePath == "" {
		statePath = h.Home.StatePath()
	}
	return collector.New(reg, in, statePath, promslog.NewNopLogger())
}

// sample is one series of a gathered metric.
type sample struct {
	labels map[string]string
	value  float64
}

// scrape is one gather, by metric name.
type scrape map[string][]sample

// gather collects c through a pedantic registry, which also fails on
// series that do not match their Desc or that appear twice.
func gather(t testing.TB, c prometheus.Collector) scrape {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	s := scrape{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			smp := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				smp.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				smp.value = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				smp.value = m.GetCounter().GetValue()
			}
			s[mf.GetName()] = append(s[mf.GetName()], smp)
		}
	}
	return s
}

// of returns the series of metric name for deployment id.
func (s scrape) of(name string, id int64) []sample {
	var out []sample
	for _, smp := range s[name] {
		if smp.labels["deployment_id"] == strconv.FormatInt(id, 10) {
			out = append(out, smp)
		}
	}
	return out
}

// value returns the single value of name for deployment id (id < 0: the
// unlabelled series), and whether there is one.
func (s scrape) value(t *testing.T, name string, id int64) (float64, bool) {
	t.Helper()
	series := s[name]
	if id >= 0 {
		series = s.of(name, id)
	}
	switch len(series) {
	case 0:
		return 0, false
	case 1:
		return series[0].value, true
	}
	t.Fatalf("%d series of %s for deployment %d", len(series), name, id)
	return 0, false
}

// status returns the status whose series is 1, checking that there is
// exactly one series per status.
func (s scrape) status(t *testing.T, id int64) string {
	t.Helper()
	series := s.of("steam_deployment_status", id)
	if len(series) != len(steam.Statuses) {
		t.Fatalf("deployment %d has %d status series, want %d", id, len(series), len(steam.Statuses))
	}
	current := ""
	for _, smp := range series {
		if smp.value == 1 {
			if current != "" {
				t.Fatalf("deployment %d has two statuses, %s and %s", id, current, smp.labels["status"])
			}
			current = smp.labels["status"]
		} else if smp.value != 0 {
			t.Fatalf("deployment %d status %s = %v", id, smp.labels["status"], smp.value)
		}
	}
	return current
}

// info returns the labels of the deployment's steam_deployment_info.
func (s scrape) info(t *testing.T, id int64) map[string]string {
	t.Helper()
	series := s.of("steam_deployment_info", id)
	if len(series) != 1 || series[0].value != 1 {
		t.Fatalf("deployment %d: info series %+v", id, series)
	}
	return series[0].labels
}

// cpuModes are the modes of steam_deployment_cpu_seconds_total, one series
// each, as node_exporter's and process-exporter's CPU counters.
var cpuModes = []string{"system", "user"}

var resourceMetrics = []string{
	"steam_deployment_cpu_seconds_total",
	"steam_deployment_resident_memory_bytes",
	"steam_deployment_virtual_memory_bytes",
	"steam_deployment_start_time_seconds",
}

// checkResources checks, for every deployment, that resource series exist
// exactly when it is up, and that they are plausible for a process started
// after since.
func (s scrape) checkResources(t *testing.T, since time.Time) {
	t.Helper()
	up := map[string]bool{}
	for _, smp := range s["steam_deployment_up"] {
		up[smp.labels["deployment_id"]] = smp.value == 1
	}
	for _, name := range resourceMetrics {
		seen := map[string]bool{}
		modes := map[string][]string{}
		for _, smp := range s[name] {
			id := smp.labels["deployment_id"]
			if mode, ok := smp.labels["mode"]; ok {
				modes[id] = append(modes[id], mode)
			}
			if !up[id] {
				t.Errorf("%s reported for deployment %s, which is not up: a process not proven its own was measured", name, id)
			}
			seen[id] = true
			ok := smp.value > 0
			if name == "steam_deployment_cpu_seconds_total" {
				ok = smp.value >= 0
			}
			if name == "steam_deployment_start_time_seconds" {
				start := time.Unix(int64(smp.value), 0)
				ok = !start.Before(since.Add(-2*time.Second)) && !start.After(time.Now().Add(2*time.Second))
			}
			if !ok {
				t.Errorf("%s of deployment %s = %v, implausible", name, id, smp.value)
			}
		}
		for id, isUp := range up {
			if isUp && !seen[id] {
				t.Errorf("deployment %s is up but has no %s", id, name)
			}
			if name == "steam_deployment_cpu_seconds_total" && seen[id] {
				if slices.Sort(modes[id]); !slices.Equal(modes[id], cpuModes) {
					t.Errorf("%s of deployment %s has modes %q, want %q", name, id, modes[id], cpuModes)
				}
			}
		}
	}
}

func TestCollectExposition(t *testing.T) {
	begin := time.Now()
	h := testkit.NewHome(t)
	running, _ := h.Run(testkit.Spec{Name: "running", LogicalName: "running"})
	dead, deadProc := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	testkit.Kill(t, deadProc)
	waiting := h.Add(testkit.Spec{Name: "waiting", LogicalName: "waiting", State: "starting"})
	reused := h.Add(testkit.Spec{Name: "reused", LogicalName: "reused"})
	if err := h.SetPID(reused.ID, testkit.StartForeign(t).Pid); err != nil {
		t.Fatal(err)
	}
	broken := h.Add(testkit.Spec{Name: "broken", NoWar: true})

	statePath := filepath.Join(t.TempDir(), "state.db")
	db, err := state.Open(context.Background(), statePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []state.Entry{
		{DeploymentID: running.ID, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: running.ID, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: dead.ID, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: dead.ID, Action: state.ActionRestart, Result: state.ResultFailure},
		{DeploymentID: 999, Action: state.ActionRestart, Result: state.ResultSuccess}, // no longer in Steam
	} {
		if _, err := db.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	c := newCollector(t, h, statePath)
	type row struct {
		d      steam.Deployment
		status string
		up     int
	}
	rows := []row{
		{running, "running", 1},
		{dead, "dead", 0},
		{waiting, "no_pid", 0},
		{reused, "pid_reused", 0},
		{broken, "misconfigured", 0},
	}
	restarts := map[int64]int{running.ID: 2, dead.ID: 1}
	var up, status, info, restartLines strings.Builder
	for _, r := range rows {
		l := fmt.Sprintf(`deployment="%s",deployment_id="%d"`, r.d.Name, r.d.ID)
		fmt.Fprintf(&up, "steam_deployment_up{%s} %d\n", l, r.up)
		for _, s := range steam.Statuses {
			v := 0
			if s == r.status {
				v = 1
			}
			fmt.Fprintf(&status, "steam_deployment_status{%s,status=%q} %d\n", l, s, v)
		}
		fmt.Fprintf(&info, "steam_deployment_info{address=\"127.0.0.1\",%s,model=%q,model_id=\"%d\",port=\"%d\",problem=%q,project=\"churn\",state=%q,war=%q} 1\n",
			l, r.d.Name+"-model", r.d.ModelID, r.d.Port, r.d.Problem, r.d.State, r.d.War)
		fmt.Fprintf(&restartLines, "steam_deployment_restarts_total{%s} %d\n", l, restarts[r.d.ID])
	}
	if broken.Problem != steam.ProblemWarMissing || broken.War != "" {
		t.Fatalf("fixture: broken deployment read as %+v", broken)
	}
	expected := `# HELP steam_deployment_up Whether the deployment's recorded process is alive and verified to be its java (1) or not (0).
# TYPE steam_deployment_up gauge
` + up.String() + `# HELP steam_deployment_status What became of the deployment's recorded process: 1 for the current status, 0 for the others.
# TYPE steam_deployment_status gauge
` + status.String() + `# HELP steam_deployment_info What Steam's registry records about the deployment; problem says why it cannot be verified, if it cannot.
# TYPE steam_deployment_info gauge
` + info.String() + `# HELP steam_deployment_restarts_total Successful restarts of the deployment by steam-overseer's remediator.
# TYPE steam_deployment_restarts_total counter
` + restartLines.String() + `# HELP steam_exporter_scrape_success Whether Steam's registry could be read at this scrape.
# TYPE steam_exporter_scrape_success gauge
steam_exporter_scrape_success 1
# HELP steam_exporter_state_scrape_success Whether steam-overseer's state database could be read at this scrape (1 also when it does not exist yet).
# TYPE steam_exporter_state_scrape_success gauge
steam_exporter_state_scrape_success 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(expected),
		"steam_deployment_up", "steam_deployment_status", "steam_deployment_info", "steam_deployment_restarts_total",
		"steam_exporter_scrape_success", "steam_exporter_state_scrape_success"); err != nil {
		t.Error(err)
	}

	s := gather(t, c)
	s.checkResources(t, begin)
	for _, name := range resourceMetrics {
		want := 1
		if name == "steam_deployment_cpu_seconds_total" {
			want = len(cpuModes)
		}
		if n := len(s[name]); n != want {
			t.Errorf("%d series of %s, want %d (the running deployment's)", n, name, want)
		}
	}
	if d, ok := s.value(t, "steam_exporter_scrape_duration_seconds", -1); !ok || d <= 0 {
		t.Errorf("steam_exporter_scrape_duration_seconds = %v, %v", d, ok)
	}
}

func TestCollectLint(t *testing.T) {
	h := testkit.NewHome(t)
	h.Run(testkit.Spec{Name: "running", LogicalName: "running"})
	h.Add(testkit.Spec{Name: "waiting", LogicalName: "waiting"})
	problems, err := testutil.CollectAndLint(newCollector(t, h, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectBadInput: each odd row or process is reported for what it is,
// and the sound deployment beside it is still reported correctly.
func TestCollectBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testkit.Options
		// setup adds the odd deployment; sound is the sound one's PID.
		setup        func(t *testing.T, h *testkit.Home, sound int) int64
		status       string
		problem      string
		up           float64
		soundProblem string
		checkLabels  func(t *testing.T, info map[string]string)
	}{
		{
			name: "model row gone, its java still running",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d, _ := h.Run(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`DELETE FROM model WHERE id = ?`, d.ModelID)
				return d.ID
			},
			status: steam.StatusMisconfigured, problem: steam.ProblemModelMissing,
			checkLabels: func(t *testing.T, info map[string]string) {
				if info["model"] != "" || info["war"] != "" || info["model_id"] == "0" {
					t.Errorf("info of a deployment without model: %v", info)
				}
			},
		},
		{
			name: "process_id NULL",
			opts: testkit.Options{Lax: true},
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET process_id = NULL WHERE id = ?`, d.ID)
				return d.ID
			},
			status: string(procid.StatusNoPID),
		},
		{
			name: "process_id negative",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET process_id = -1 WHERE id = ?`, d.ID)
				return d.ID
			},
			status: string(procid.StatusNoPID),
		},
		{
			name: "process_id is text",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET process_id = 'none' WHERE id = ?`, d.ID)
				return d.ID
			},
			status: string(procid.StatusNoPID),
		},
		{
			name: "port 0",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET port = 0 WHERE id = ?`, d.ID)
				return d.ID
			},
			status: steam.StatusMisconfigured, problem: steam.ProblemPortInvalid,
			checkLabels: func(t *testing.T, info map[string]string) {
				if info["port"] != "0" {
					t.Errorf("port label %q, want 0", info["port"])
				}
			},
		},
		{
			name: "port above 65535",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET port = 70000 WHERE id = ?`, d.ID)
				return d.ID
			},
			status: steam.StatusMisconfigured, problem: steam.ProblemPortInvalid,
			checkLabels: func(t *testing.T, info map[string]string) {
				if info["port"] != "70000" {
					t.Errorf("port label %q, want 70000", info["port"])
				}
			},
		},
		{
			name: "port is text",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET port = 'http' WHERE id = ?`, d.ID)
				return d.ID
			},
			status: steam.StatusMisconfigured, problem: steam.ProblemPortInvalid,
		},
		{
			name: "war missing",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				return h.Add(testkit.Spec{Name: "odd", LogicalName: "odd", NoWar: true}).ID
			},
			status: steam.StatusMisconfigured, problem: steam.ProblemWarMissing,
		},
		{
			name: "war deleted under its running java",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d, _ := h.Run(testkit.Spec{Name: "odd", LogicalName: "odd"})
				if err := os.Remove(d.War); err != nil {
					t.Fatal(err)
				}
				return d.ID
			},
			// The java proves its identity by its command line: it runs,
			// and the problem says what a restart would run into.
			status: string(procid.StatusRunning), problem: steam.ProblemWarMissing, up: 1,
		},
		{
			name: "jetty-runner.jar missing",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				if err := os.Remove(h.Home.JettyRunner()); err != nil {
					t.Fatal(err)
				}
				return d.ID
			},
			status: steam.StatusMisconfigured, problem: steam.ProblemJettyRunnerMissing,
			soundProblem: steam.ProblemJettyRunnerMissing,
		},
		{
			name: "two wars and no logical name, one of them running",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d, _ := h.Run(testkit.Spec{Name: "odd"})
				if err := h.WriteWar(d.ModelID, "odd_py.war", testkit.Behaviour{}); err != nil {
					t.Fatal(err)
				}
				return d.ID
			},
			// Which war is the deployment's cannot be told, so the java
			// is not proven to be it and is not measured.
			status: steam.StatusMisconfigured, problem: steam.ProblemWarAmbiguous,
		},
		{
			name: "PID of an unrelated process",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, testkit.StartForeign(t).Pid, d.ID)
				return d.ID
			},
			status: string(procid.StatusPIDReused),
		},
		{
			name: "PID of another deployment's java",
			setup: func(t *testing.T, h *testkit.Home, sound int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, sound, d.ID)
				return d.ID
			},
			status: string(procid.StatusPIDReused),
		},
		{
			name: "PID of a kernel thread",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET process_id = 2 WHERE id = ?`, d.ID)
				return d.ID
			},
			status: string(procid.StatusPIDReused),
		},
		{
			name: "zombie",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd",
					Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})
				cmd := h.Command(h.Java, d)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// Not waited for until the test ends: it stays a zombie.
				t.Cleanup(func() { _ = cmd.Wait() })
				in, err := procid.NewInspector("")
				if err != nil {
					t.Fatal(err)
				}
				id, _ := d.Identity()
				testkit.Eventually(t, 10*time.Second, "a zombie", func() bool {
					return in.Inspect(cmd.Process.Pid, id).Status == procid.StatusZombie
				})
				h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, cmd.Process.Pid, d.ID)
				return d.ID
			},
			status: string(procid.StatusZombie),
		},
		{
			name: "dead",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d, p := h.Run(testkit.Spec{Name: "odd", LogicalName: "odd"})
				testkit.Kill(t, p)
				return d.ID
			},
			status: string(procid.StatusDead),
		},
		{
			name: "name is not UTF-8",
			setup: func(t *testing.T, h *testkit.Home, _ int) int64 {
				d := h.Add(testkit.Spec{Name: "odd", LogicalName: "odd"})
				h.Exec(`UPDATE service SET name = CAST(X'6F64FF64' AS TEXT) WHERE id = ?`, d.ID)
				return d.ID
			},
			status: string(procid.StatusNoPID),
			checkLabels: func(t *testing.T, info map[string]string) {
				if info["deployment"] != "od\uFFFDd" {
					t.Errorf("deployment label %q", info["deployment"])
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			h := testkit.NewHome(t, tc.opts)
			sound, soundProc := h.Run(testkit.Spec{Name: "sound", LogicalName: "sound"})
			odd := tc.setup(t, h, soundProc.Pid)

			s := gather(t, newCollector(t, h, ""))
			if v, _ := s.value(t, "steam_exporter_scrape_success", -1); v != 1 {
				t.Fatalf("steam_exporter_scrape_success = %v", v)
			}
			if got := s.status(t, odd); got != tc.status {
				t.Errorf("status %q, want %q", got, tc.status)
			}
			if up, _ := s.value(t, "steam_deployment_up", odd); up != tc.up {
				t.Errorf("up = %v, want %v", up, tc.up)
			}
			info := s.info(t, odd)
			if info["problem"] != tc.problem {
				t.Errorf("problem %q, want %q", info["problem"], tc.problem)
			}
			if tc.checkLabels != nil {
				tc.checkLabels(t, info)
			}

			if got := s.status(t, sound.ID); got != string(procid.StatusRunning) {
				t.Errorf("sound deployment: status %q, want running", got)
			}
			if up, _ := s.value(t, "steam_deployment_up", sound.ID); up != 1 {
				t.Errorf("sound deployment: up = %v", up)
			}
			if p := s.info(t, sound.ID)["problem"]; p != tc.soundProblem {
				t.Errorf("sound deployment: problem %q, want %q", p, tc.soundProblem)
			}
			if r, ok := s.value(t, "steam_deployment_restarts_total", sound.ID); !ok || r != 0 {
				t.Errorf("sound deployment: restarts_total = %v, %v", r, ok)
			}
			s.checkResources(t, begin)
		})
	}
}

func TestCollectRegistryUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		// breakDB breaks Steam's database and returns what repairs it.
		breakDB func(t *testing.T, h *testkit.Home) (repair func())
	}{
		{
			name: "missing",
			breakDB: func(t *testing.T, h *testkit.Home) func() {
				aside := h.Home.DBPath() + ".aside"
				rename(t, h.Home.DBPath(), aside)
				return func() { rename(t, aside, h.Home.DBPath()) }
			},
		},
		{
			name: "not a database",
			breakDB: func(t *testing.T, h *testkit.Home) func() {
				aside := h.Home.DBPath() + ".aside"
				rename(t, h.Home.DBPath(), aside)
				if err := os.WriteFile(h.Home.DBPath(), []byte(strings.Repeat("garbage", 1000)), 0o644); err != nil {
					t.Fatal(err)
				}
				return func() { rename(t, aside, h.Home.DBPath()) }
			},
		},
		{
			name: "locked past the busy timeout",
			breakDB: func(t *testing.T, h *testkit.Home) func() {
				lock := h.HoldLock(testkit.Exclusive)
				return func() {
					if err := lock.Release(); err != nil {
						t.Fatal(err)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d, _ := h.Run(testkit.Spec{Name: "a", LogicalName: "a"})
			c := newCollector(t, h, "")

			repair := tc.breakDB(t, h)
			s := gather(t, c)
			if v, ok := s.value(t, "steam_exporter_scrape_success", -1); !ok || v != 0 {
				t.Errorf("steam_exporter_scrape_success = %v, %v; want 0", v, ok)
			}
			if v, ok := s.value(t, "steam_exporter_state_scrape_success", -1); !ok || v != 1 {
				t.Errorf("steam_exporter_state_scrape_success = %v, %v; want 1", v, ok)
			}
			if _, ok := s.value(t, "steam_exporter_scrape_duration_seconds", -1); !ok {
				t.Error("no steam_exporter_scrape_duration_seconds")
			}
			for name := range s {
				if strings.HasPrefix(name, "steam_deployment_") {
					t.Errorf("%s reported although the registry could not be read", name)
				}
			}

			repair()
			s = gather(t, c)
			if v, _ := s.value(t, "steam_exporter_scrape_success", -1); v != 1 {
				t.Errorf("after repair: steam_exporter_scrape_success = %v", v)
			}
			if v, _ := s.value(t, "steam_deployment_up", d.ID); v != 1 {
				t.Errorf("after repair: steam_deployment_up = %v", v)
			}
		})
	}
}

func TestCollectStateDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare writes the state database at path (or not).
		prepare  func(t *testing.T, path string, id int64)
		success  float64
		restarts []float64 // nil: no series
		backup   []float64 // steam_backup_last_success_timestamp_seconds; nil: no series
	}{
		{
			name:     "not created yet",
			prepare:  func(*testing.T, string, int64) {},
			success:  1,
			restarts: []float64{0},
		},
		{
			name: "restarts counted",
			prepare: func(t *testing.T, path string, id int64) {
				db, err := state.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for range 3 {
					if _, err := db.Record(context.Background(), state.Entry{DeploymentID: id,
						Action: state.ActionRestart, Result: state.ResultSuccess}); err != nil {
						t.Fatal(err)
					}
				}
			},
			success:  1,
			restarts: []float64{3},
		},
		{
			name: "backups recorded",
			prepare: func(t *testing.T, path string, _ int64) {
				db, err := state.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for _, r := range []state.BackupRecord{
					{Time: time.Unix(1_700_000_000, 0), Result: state.ResultSuccess},
					{Time: time.Unix(1_700_086_400, 500_000_000), Result: state.ResultSuccess},
					{Time: time.Unix(1_700_090_000, 0), Result: state.ResultFailure, Error: "disk full"},
				} {
					if err := db.RecordBackup(context.Background(), r); err != nil {
						t.Fatal(err)
					}
				}
			},
			success:  1,
			restarts: []float64{0},
			// The newest success; the later failure does not count.
			backup: []float64{1_700_086_400.5},
		},
		{
			name: "not a database",
			prepare: func(t *testing.T, path string, _ int64) {
				if err := os.WriteFile(path, []byte(strings.Repeat("garbage", 1000)), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			// A counter that disappears is better than one that drops to
			// 0 and reads as a reset.
			success: 0,
		},
		{
			name: "no restarts table",
			prepare: func(t *testing.T, path string, _ int64) {
				if err := os.WriteFile(path, nil, 0o644); err != nil { // an empty file is an empty database
					t.Fatal(err)
				}
			},
			success: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d, _ := h.Run(testkit.Spec{Name: "a", LogicalName: "a"})
			path := filepath.Join(t.TempDir(), "state.db")
			tc.prepare(t, path, d.ID)

			s := gather(t, newCollector(t, h, path))
			if v, _ := s.value(t, "steam_exporter_state_scrape_success", -1); v != tc.success {
				t.Errorf("steam_exporter_state_scrape_success = %v, want %v", v, tc.success)
			}
			var got []float64
			for _, smp := range s["steam_deployment_restarts_total"] {
				got = append(got, smp.value)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.restarts) {
				t.Errorf("restarts_total = %v, want %v", got, tc.restarts)
			}
			var backup []float64
			for _, smp := range s["steam_backup_last_success_timestamp_seconds"] {
				backup = append(backup, smp.value)
			}
			if fmt.Sprint(backup) != fmt.Sprint(tc.backup) {
				t.Errorf("steam_backup_last_success_timestamp_seconds = %v, want %v", backup, tc.backup)
			}
			// The rest of the scrape does not depend on the state database.
			if v, _ := s.value(t, "steam_exporter_scrape_success", -1); v != 1 {
				t.Errorf("steam_exporter_scrape_success = %v", v)
			}
			if v, _ := s.value(t, "steam_deployment_up", d.ID); v != 1 {
				t.Errorf("steam_deployment_up = %v", v)
			}
		})
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}
