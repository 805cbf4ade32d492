package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/dashboards"
	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

// shippedBudget is what the shipped prometheus.yml, alerts.yml and
// alertmanager.yml promise for a killed deployment, on top of its JVM's own
// start: a 5s scrape, a 5s evaluation, SteamDeploymentDown's 10s hold and a
// 1s group_wait add up to 21s at worst; the rest is the remediator's
// verification and the programs' own latency.
const shippedBudget = 25 * time.Second

// TestShippedTimings runs the shipped files with their real timings, none
// shortened: only the addresses, the bearer token file and the operators'
// receiver (a recorder in place of the placeholder email) are changed. One
// deployment is SIGKILLed; the test measures until it serves again,
// started by the remediator through Prometheus and Alertmanager, and
// fails when that takes longer than shippedBudget plus the deployment's own
// start.
func TestShippedTimings(t *testing.T) {
	prometheusBin := steamtest.RequireTool(t, "prometheus")
	alertmanagerBin := steamtest.RequireTool(t, "prometheus-alertmanager")
	bin := steamtest.Binary(t)

	dir := t.TempDir()
	h := steamtest.NewHome(t)
	victim := h.Add(steamfixture.Spec{Name: "churn-gbm", LogicalName: "churn-gbm"})
	// The deployment's own start, as Steam starts it, up to its first
	// /ping: what a restart cannot be faster than.
	began := time.Now()
	victimProcess := h.Start(victim)
	ownStart := time.Since(began)
	victim = h.Deployment(victim.ID)

	addr := func() string {
		port, err := steamfixture.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	exporterAddr, remediatorAddr, prometheusAddr, alertmanagerAddr := addr(), addr(), addr(), addr()
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeFile(t, filepath.Join(dir, "webhook-token"), []byte(hex.EncodeToString(token)+"\n"))

	// The exporter and the remediator with their default settings.
	env := append(os.Environ(), "PATH="+filepath.Dir(h.Java)+string(os.PathListSeparator)+os.Getenv("PATH"))
	start(t, dir, "exporter", env, bin, "exporter", "--steam.home="+h.Home.Dir, "--web.listen-address="+exporterAddr)
	start(t, dir, "remediator", env, bin, "remediator", "--steam.home="+h.Home.Dir,
		"--web.listen-address="+remediatorAddr, "--webhook.bearer-token-file="+tokenFile,
		"--webhook.match=instance="+exporterAddr)

	operators := newRecorder()
	operatorsServer := httptest.NewServer(operators)
	t.Cleanup(operatorsServer.Close)
	amConfig, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, dashboards.AlertmanagerOverrides{
		RemediatorURL:   "http://" + remediatorAddr + "/webhook",
		CredentialsFile: tokenFile,
		OperatorsURL:    operatorsServer.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "alertmanager", nil, alertmanagerBin,
		"--config.file="+writeFile(t, filepath.Join(dir, "alertmanager.yml"), amConfig),
		"--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address="+alertmanagerAddr,
		"--cluster.listen-address=")

	// The shipped rules as they are; prometheus.yml with its own intervals.
	writeFile(t, filepath.Join(dir, "alerts.yml"), dashboards.AlertRules)
	promConfig, err := dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, dashboards.PrometheusOverrides{
		ExporterAddr:     exporterAddr,
		RemediatorAddr:   remediatorAddr,
		AlertmanagerAddr: alertmanagerAddr,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "prometheus", nil, prometheusBin,
		"--config.file="+writeFile(t, filepath.Join(dir, "prometheus.yml"), promConfig),
		"--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+prometheusAddr)
	for _, u := range []string{
		"http://" + exporterAddr + "/metrics",
		"http://" + remediatorAddr + "/-/ready",
		"http://" + alertmanagerAddr + "/-/ready",
		"http://" + prometheusAddr + "/-/ready",
	} {
		eventually(t, 30*time.Second, u+" to answer 200", func() (bool, string) {
			code, err := httpGet(u)
			return code == http.StatusOK, fmt.Sprint(code, err)
		})
	}

	// Before the kill: Prometheus has scraped the deployment up and has
	// evaluated the rules on it, so the measurement starts from a steady
	// state, as on a real host.
	prom := promAPI{base: "http://" + prometheusAddr}
	id := fmt.Sprintf("deployment_id=%q", victim.IDString())
	eventually(t, 30*time.Second, "Prometheus to see the deployment up and evaluate the rules on it", func() (bool, string) {
		up, err := prom.query(`steam_deployment_up{` + id + `} == 1`)
		if err != nil || len(up) != 1 {
			return false, fmt.Sprint(up, err)
		}
		var rules struct {
			Groups []struct {
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"groups"`
		}
		err = prom.get("/api/v1/rules", nil, &rules)
		return err == nil && len(rules.Groups) == 1 && rules.Groups[0].LastEvaluation.After(began),
			fmt.Sprintf("rule groups %+v (%v)", rules.Groups, err)
	})

	oldPID := victimProcess.Pid
	killed := time.Now()
	steamtest.Kill(t, victimProcess)
	t.Logf("SIGKILLed deployment %s (PID %d); its own start takes %s", victim.Name, oldPID, ownStart.Round(time.Millisecond))

	ping := fmt.Sprintf("http://127.0.0.1:%d/ping", victim.Port)
	limit := shippedBudget + ownStart
	eventuallyEvery(t, limit+30*time.Second, 20*time.Millisecond, "the deployment to serve /ping again", func() (bool, string) {
		code, err := httpGet(ping)
		return code == http.StatusOK, fmt.Sprint(code, err)
	})
	serving := time.Since(killed)
	if pid := h.Deployment(victim.ID).PID; pid == int64(oldPID) || pid == 0 {
		t.Errorf("Steam's row holds PID %d after the restart, want the new java's", pid)
	}
	t.Logf("kill → serving with the shipped timings: %s (budget %s + the deployment's own start %s)",
		serving.Round(time.Millisecond), shippedBudget, ownStart.Round(time.Millisecond))
	if serving > limit {
		t.Errorf("kill → serving took %s, more than %s + %s", serving.Round(time.Millisecond), shippedBudget, ownStart.Round(time.Millisecond))
	}
	for _, name := range operators.alertnames() {
		if name == "SteamDeploymentDown" {
			t.Errorf("the operators' receiver got SteamDeploymentDown: the shipped route must send it to the remediator only")
		}
	}
}
