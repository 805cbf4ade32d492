package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/dashboards"
	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// minutes matches a rule's range of whole minutes, as in [5m].
var minutes = regexp.MustCompile(`\[(\d+)m\]`)

// scaleTime returns the shipped rules with every hold and every range of
// minutes divided by holdFactor (30): for: 5m and [5m] become 10s, so that
// the JVM alerts judge 10 s of a real JVM as the shipped rules judge 5 min.
func scaleTime(t *testing.T) []byte {
	t.Helper()
	rules, err := dashboards.ShortenHolds(dashboards.AlertRules, holdFactor)
	if err != nil {
		t.Fatal(err)
	}
	return minutes.ReplaceAllFunc(rules, func(m []byte) []byte {
		n, _ := strconv.Atoi(string(minutes.FindSubmatch(m)[1]))
		return []byte(fmt.Sprintf("[%ds]", n*60/holdFactor))
	})
}

// A real JVM that keeps its 64 MiB heap full fires SteamDeploymentJVMHeapFull
// and SteamDeploymentJVMGCThrashing through real Prometheus evaluating the
// shipped rules (time scaled, see scaleTime); a healthy one beside it fires
// neither.
func TestJVMAlerts(t *testing.T) {
	t.Parallel()
	prometheusBin := testkit.RequireTool(t, "prometheus")
	bin := testkit.Binary(t)
	dir := t.TempDir()
	h := testkit.NewJettyHome(t)
	healthy, _ := testkit.RunJetty(t, h, testkit.Spec{Name: "healthy", LogicalName: "healthy"}, jetty.War{})
	h.JavaEnv = []string{"JDK_JAVA_OPTIONS=-Xmx64m"}
	full, _ := testkit.RunJetty(t, h, testkit.Spec{Name: "full", LogicalName: "full"}, jetty.War{Mode: jetty.ModeFillHeap})
	h.JavaEnv = nil
	// fill_heap starts filling at its first request.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/predict?x=1", full.Port)); err == nil {
		resp.Body.Close()
	}

	addr := func() string {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	exporterAddr, prometheusAddr := addr(), addr()
	start(t, dir, "exporter", testkit.JettyEnv(t, h), bin, "exporter", "--steam.home="+h.Home.Dir,
		"--web.listen-address="+exporterAddr, "--probe.interval=1s", "--probe.timeout=500ms")
	writeFile(t, filepath.Join(dir, "alerts.yml"), scaleTime(t))
	// No remediator nor Alertmanager: Prometheus' own alert states are the proof.
	promConfig, err := dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, dashboards.PrometheusOverrides{
		ExporterAddr: exporterAddr, RemediatorAddr: addr(), AlertmanagerAddr: addr(), Interval: interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "prometheus", nil, prometheusBin,
		"--config.file="+writeFile(t, filepath.Join(dir, "prometheus.yml"), promConfig),
		"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+prometheusAddr)
	waitOK(t, "http://"+exporterAddr+"/metrics", "http://"+prometheusAddr+"/-/ready")
	prom := promAPI{base: "http://" + prometheusAddr}

	// The healthy JVM is measured, so its silence proves something.
	eventually(t, 60*time.Second, "the healthy JVM's heap in Prometheus", func() (bool, string) {
		s, err := prom.query(fmt.Sprintf(`steam_deployment_jvm_memory_used_bytes{area="heap", deployment_id="%d"}`, healthy.ID))
		return len(s) == 1, fmt.Sprint(s, err)
	})
	jvmAlerts := []string{"SteamDeploymentJVMHeapFull", "SteamDeploymentJVMGCThrashing"}
	firing := map[string]bool{}
	testkit.EventuallyEvery(t, 120*time.Second, time.Second, "both JVM alerts firing for the full heap", func() (bool, string) {
		alerts, err := prom.alerts()
		if err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			for _, name := range jvmAlerts {
				if a.Labels["alertname"] != name {
					continue
				}
				if a.Labels["deployment_id"] == healthy.IDString() {
					t.Fatalf("%s is %s for the healthy deployment: %+v", name, a.State, a)
				}
				if a.Labels["deployment_id"] == full.IDString() && a.State == "firing" {
					firing[name] = true
				}
			}
		}
		return len(firing) == len(jvmAlerts), fmt.Sprintf("firing: %v; alerts: %+v", firing, alerts)
	})
	heap, _ := prom.query(fmt.Sprintf(`steam_deployment_jvm_memory_pool_used_bytes{pool="old", deployment_id="%d"}
		/ steam_deployment_jvm_memory_pool_max_bytes`, full.ID))
	gc, _ := prom.query(fmt.Sprintf(`sum(rate(steam_deployment_jvm_gc_collection_seconds_sum{deployment_id="%d"}[10s]))`, full.ID))
	t.Logf("full heap: old generation %v of max, GC %v of wall time", heap, gc)
}
