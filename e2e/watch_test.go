package e2e

// TestExitWatch runs the loop as the shipped files set it up, the exporter's
// exit watch on (EXPORTER_ARGS of the Debian default file): the exporter, the
// remediator, Debian's Alertmanager and Prometheus with the shipped timings,
// none shortened. It proves what the watch must survive: a silence, a
// stopped Prometheus, an exporter down while a java died, an Alertmanager
// outage, and Steam's own stops. scripts/bench-kill runs the long forms and
// TestKillBench (kill_bench_test.go).

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/dashboards"
	"github.com/steam-overseer/steam-overseer/internal/exitwatch"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

var (
	watchSilence = flag.Duration("watch.silence", 20*time.Second, "how long TestExitWatch's silence holds a dead deployment")
	watchOutage  = flag.Duration("watch.outage", 20*time.Second, "how long TestExitWatch's Alertmanager is down")
	watchStops   = flag.Int("watch.stops", 5, "deployments TestExitWatch stops as Steam does")
	watchSettle  = flag.Duration("watch.settle", 0, "the exporter's --alertmanager.settle (0: the shipped default)")
)

func TestExitWatch(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	var ids []int64
	for i := range 6 + *watchStops {
		d, _ := h.Run(testkit.Spec{Name: fmt.Sprintf("model%02d", i+1), LogicalName: fmt.Sprintf("model%02d", i+1)})
		ids = append(ids, d.ID)
	}
	env := append(os.Environ(), "PATH="+filepath.Dir(h.Java)+string(os.PathListSeparator)+os.Getenv("PATH"))
	s := startWatchStack(t, h, env)
	s.waitWatched(t, len(ids))

	t.Run("silence", func(t *testing.T) {
		// Every alert of the deployment, the exporter's and Prometheus'.
		id := ids[0]
		silence := s.silence(t, map[string]string{"deployment_id": strconv.FormatInt(id, 10)})
		killed, old := s.kill(t, id)
		for end := time.Now().Add(*watchSilence); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if n := testkit.StartsLogged(t, h, id); n > 0 || h.Deployment(id).PID != int64(old) {
				t.Fatalf("deployment %d started %d times (row PID %d) under a silence, %s after the kill",
					id, n, h.Deployment(id).PID, time.Since(killed).Round(time.Millisecond))
			}
		}
		s.expire(t, silence)
		expired := time.Now()
		serving, _ := s.healed(t, id, old, time.Minute)
		t.Logf("silenced %s: not started; expired → serving %s", *watchSilence, serving.Sub(expired).Round(time.Millisecond))
	})

	t.Run("Prometheus stopped", func(t *testing.T) {
		s.prometheus.kill()
		defer func() {
			if err := s.prometheus.start(); err != nil {
				t.Fatal(err)
			}
		}()
		killed, old := s.kill(t, ids[1])
		serving, _ := s.healed(t, ids[1], old, time.Minute)
		t.Logf("Prometheus stopped: kill → serving %s", serving.Sub(killed).Round(time.Millisecond))

		// A java that died while the exporter was down is reported once it
		// is back; Prometheus, still stopped, cannot.
		s.exporter.kill()
		_, old = s.kill(t, ids[2])
		time.Sleep(2 * time.Second)
		if err := s.exporter.start(); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		serving, _ = s.healed(t, ids[2], old, time.Minute)
		t.Logf("died while the exporter was down: exporter back → serving %s", serving.Sub(back).Round(time.Millisecond))
	})

	t.Run("Alertmanager outage", func(t *testing.T) {
		waitOK(t, "http://"+s.prometheusAddr+"/-/ready", "http://"+s.exporterAddr+"/metrics")
		s.waitWatched(t, len(ids))
		before := s.scrapeTimes(t, 10, 0)
		s.alertmanager.kill()
		victims := ids[3:6]
		var olds []int
		var during []time.Duration
		for i, id := range victims {
			_, old := s.kill(t, id)
			olds = append(olds, old)
			during = append(during, s.scrapeTimes(t, 5, *watchOutage/time.Duration(len(victims))/5)...)
			for j, v := range victims[:i+1] {
				if pid := h.Deployment(v).PID; pid != int64(olds[j]) {
					t.Fatalf("deployment %d restarted (PID %d) with Alertmanager down", v, pid)
				}
			}
		}
		if err := s.alertmanager.start(); err != nil {
			t.Fatal(err)
		}
		waitOK(t, "http://"+s.alertmanagerAddr+"/-/ready")
		back := time.Now()
		var took []time.Duration
		for i, id := range victims {
			serving, _ := s.healed(t, id, olds[i], time.Minute)
			took = append(took, serving.Sub(back).Round(time.Millisecond))
		}
		t.Logf("Alertmanager down %s while 3 deployments died; ready → serving: %v", *watchOutage, took)
		t.Logf("exporter scrape before the outage p50 %s max %s; during p50 %s max %s",
			percentile(before, 50), percentile(before, 100), percentile(during, 50), percentile(during, 100))
	})

	t.Run("Steam stops", func(t *testing.T) {
		stopped := ids[6:]
		wars := map[int64]string{}
		running := javasByWar()
		for _, id := range stopped {
			d := h.Deployment(id)
			if pids := running[d.War]; !slices.Equal(pids, []int{int(d.PID)}) {
				t.Fatalf("deployment %d (PID %d): javas %v running its war", id, d.PID, pids)
			}
			wars[id] = d.War
			stopLikeSteam(t, h, id, int(d.PID))
		}
		// The remediator reads the row every second of a start's watch
		// window and stops a java it started once the row is gone.
		eventually(t, 30*time.Second, "no java of a deployment Steam stopped", func() (bool, string) {
			javas := javasByWar()
			for _, id := range stopped {
				if pids := javas[wars[id]]; len(pids) > 0 {
					return false, fmt.Sprintf("deployment %d runs javas %v", id, pids)
				}
			}
			return true, ""
		})
		begun := 0
		for _, id := range stopped {
			begun += testkit.StartsLogged(t, h, id)
		}
		// A java is stopped before its cancellation is recorded.
		var cancelled float64
		eventually(t, 10*time.Second, "each start of a stopped deployment cancelled", func() (bool, string) {
			cancelled = metricSum(t, "http://"+s.remediatorAddr+"/metrics", "steam_remediator_actions_total", "action", "cancelled")
			return float64(begun) == cancelled, fmt.Sprintf("%d starts begun, %v cancelled", begun, cancelled)
		})
		t.Logf("%d Steam stops (settle %s): starts begun %d, cancelled %v, surviving 0", len(stopped), s.settle, begun, cancelled)
	})
}

// watchStack is the loop with the shipped files and timings and the
// exporter's exit watch on as the Debian default file turns it on.
type watchStack struct {
	h                                                              *testkit.Home
	exporterAddr, remediatorAddr, alertmanagerAddr, prometheusAddr string
	exporter, remediator, alertmanager, prometheus                 *service
	inspector                                                      *procid.Inspector
	settle                                                         string
}

// shippedExporterArgs are EXPORTER_ARGS of the shipped
// /etc/default/steam-overseer, with this run's Alertmanager and exporter
// addresses for the shipped ones.
func shippedExporterArgs(t testing.TB, alertmanagerAddr, exporterAddr string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "systemd", "steam-overseer.default"))
	if err != nil {
		t.Fatal(err)
	}
	var value string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "EXPORTER_ARGS="); ok {
			value = strings.Trim(v, `"`)
		}
	}
	for _, shipped := range []string{"=http://127.0.0.1:9093", "=instance=127.0.0.1:9732", "=steam_host=127.0.0.1"} {
		if !strings.Contains(value, shipped) {
			t.Fatalf("EXPORTER_ARGS %q lacks %s", value, shipped)
		}
	}
	return strings.Fields(strings.NewReplacer("127.0.0.1:9093", alertmanagerAddr, "127.0.0.1:9732", exporterAddr).Replace(value))
}

// startWatchStack starts the stack on h's home; env is the exporter's and
// remediator's (the java on PATH).
func startWatchStack(t *testing.T, h *testkit.Home, env []string) *watchStack {
	t.Helper()
	prometheusBin := testkit.RequireTool(t, "prometheus")
	alertmanagerBin := testkit.RequireTool(t, "prometheus-alertmanager")
	bin := testkit.Binary(t)
	dir := t.TempDir()
	addr := func() string {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	s := &watchStack{h: h, exporterAddr: addr(), remediatorAddr: addr(), alertmanagerAddr: addr(), prometheusAddr: addr(),
		settle: exitwatch.DefaultSettle.String() + " (shipped)"}
	var err error
	if s.inspector, err = procid.NewInspector(""); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeFile(t, filepath.Join(dir, "webhook-token"), []byte("e2e-watch-token\n"))

	exporterArgs := append([]string{bin, "exporter", "--steam.home=" + h.Home.Dir, "--web.listen-address=" + s.exporterAddr},
		shippedExporterArgs(t, s.alertmanagerAddr, s.exporterAddr)...)
	if *watchSettle > 0 {
		s.settle = watchSettle.String()
		exporterArgs = append(exporterArgs, "--alertmanager.settle="+s.settle)
	}
	s.exporter = start(t, dir, "exporter", env, exporterArgs...)
	s.remediator = start(t, dir, "remediator", env, bin, "remediator", "--steam.home="+h.Home.Dir,
		"--web.listen-address="+s.remediatorAddr, "--webhook.bearer-token-file="+tokenFile,
		"--webhook.match=instance="+s.exporterAddr)

	amConfig, _ := alertmanagerConfigShipped(t, "http://"+s.remediatorAddr+"/webhook", tokenFile)
	s.alertmanager = start(t, dir, "alertmanager", nil, alertmanagerBin,
		"--config.file="+writeFile(t, filepath.Join(dir, "alertmanager.yml"), amConfig),
		"--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address="+s.alertmanagerAddr, "--cluster.listen-address=")

	writeFile(t, filepath.Join(dir, "alerts.yml"), dashboards.AlertRules)
	promConfig, err := dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, dashboards.PrometheusOverrides{
		ExporterAddr: s.exporterAddr, RemediatorAddr: s.remediatorAddr, AlertmanagerAddr: s.alertmanagerAddr})
	if err != nil {
		t.Fatal(err)
	}
	s.prometheus = start(t, dir, "prometheus", nil, prometheusBin,
		"--config.file="+writeFile(t, filepath.Join(dir, "prometheus.yml"), promConfig),
		"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+s.prometheusAddr)
	waitOK(t, "http://"+s.exporterAddr+"/metrics", "http://"+s.remediatorAddr+"/-/ready",
		"http://"+s.alertmanagerAddr+"/-/ready", "http://"+s.prometheusAddr+"/-/ready")
	return s
}

// alertmanagerConfigShipped is the shipped alertmanager.yml with its timers:
// only the remediator's address and token file change, and the operators'
// receiver is a recorder.
func alertmanagerConfigShipped(t *testing.T, remediatorURL, tokenFile string) ([]byte, *recorder) {
	t.Helper()
	operators := newRecorder()
	server := httptest.NewServer(operators)
	t.Cleanup(server.Close)
	config, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, dashboards.AlertmanagerOverrides{
		RemediatorURL: remediatorURL, CredentialsFile: tokenFile, OperatorsURL: server.URL})
	if err != nil {
		t.Fatal(err)
	}
	return config, operators
}

// waitWatched waits until the exit watch watches n javas.
func (s *watchStack) waitWatched(t *testing.T, n int) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("the exit watch to watch %d javas", n), func() (bool, string) {
		got := metricSum(t, "http://"+s.exporterAddr+"/metrics", "steam_exporter_exit_watch_processes", "", "")
		return got == float64(n), fmt.Sprint(got)
	})
}

// kill SIGKILLs the verified java of the deployment's row.
func (s *watchStack) kill(t testing.TB, id int64) (killed time.Time, pid int) {
	t.Helper()
	d, err := steam.NewRegistry(s.h.Home).Deployment(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	identity, ok := d.Identity()
	if !ok {
		t.Fatalf("deployment %d has no identity: %s", id, d.Problem)
	}
	p := s.inspector.Inspect(int(d.PID), identity)
	if p.Status != procid.StatusRunning {
		t.Fatalf("deployment %d: PID %d is %s", id, d.PID, p.Status)
	}
	killed = time.Now()
	if err := s.inspector.Signal(p, identity, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return killed, p.PID
}

// healed waits until the deployment answers /ping and its row holds a new
// PID, its running java; serving is the first 200.
func (s *watchStack) healed(t testing.TB, id int64, old int, timeout time.Duration) (serving time.Time, pid int) {
	t.Helper()
	registry := steam.NewRegistry(s.h.Home)
	d, err := registry.Deployment(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	identity, _ := d.Identity()
	ping := fmt.Sprintf("http://127.0.0.1:%d/ping", d.Port)
	deadline := time.Now().Add(timeout)
	for {
		if serving.IsZero() {
			if resp, err := pingClient.Get(ping); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					serving = time.Now()
				}
			}
		}
		if !serving.IsZero() {
			d, err := registry.Deployment(t.Context(), id)
			if err == nil && d.PID != int64(old) && s.inspector.Inspect(int(d.PID), identity).Status == procid.StatusRunning {
				return serving, int(d.PID)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %d not serving under a new PID within %s (row PID %d, was %d)", id, timeout, d.PID, old)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scrapeTimes times n scrapes of the exporter, every gap.
func (s *watchStack) scrapeTimes(t testing.TB, n int, gap time.Duration) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		began := time.Now()
		code, err := httpGet("http://" + s.exporterAddr + "/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("scraping the exporter: %d %v", code, err)
		}
		out = append(out, time.Since(began))
		time.Sleep(gap)
	}
	return out
}

// silence silences every alert with these labels for an hour in
// Alertmanager; it returns the silence's id.
func (s *watchStack) silence(t testing.TB, labels map[string]string) string {
	t.Helper()
	type matcher struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual bool   `json:"isEqual"`
	}
	body := struct {
		Matchers  []matcher `json:"matchers"`
		StartsAt  time.Time `json:"startsAt"`
		EndsAt    time.Time `json:"endsAt"`
		CreatedBy string    `json:"createdBy"`
		Comment   string    `json:"comment"`
	}{StartsAt: time.Now(), EndsAt: time.Now().Add(time.Hour), CreatedBy: "e2e", Comment: "maintenance"}
	for name, value := range labels {
		body.Matchers = append(body.Matchers, matcher{Name: name, Value: value, IsEqual: true})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post("http://"+s.alertmanagerAddr+"/api/v2/silences", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct {
		SilenceID string `json:"silenceID"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusOK || created.SilenceID == "" {
		t.Fatalf("creating a silence: HTTP %d, %+v, %v", resp.StatusCode, created, err)
	}
	return created.SilenceID
}

// expire ends a silence now.
func (s *watchStack) expire(t testing.TB, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, "http://"+s.alertmanagerAddr+"/api/v2/silence/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("expiring silence %s: HTTP %d", id, resp.StatusCode)
	}
}

// stopLikeSteam stops a deployment as Steam does: SIGINT every second while
// the java lives, SIGKILL after 10 s, and the row deleted once it is gone.
func stopLikeSteam(t testing.TB, h *testkit.Home, id int64, pid int) {
	t.Helper()
	for range 10 {
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
			break
		}
		time.Sleep(time.Second)
		if !testkit.Alive(pid) {
			break
		}
	}
	if testkit.Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		time.Sleep(time.Second)
	}
	h.Exec(`DELETE FROM service WHERE id = ?`, id)
}
