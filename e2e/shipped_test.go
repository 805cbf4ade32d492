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
	"github.com/steam-overseer/steam-overseer/internal/promstack"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// shippedBudget is what the shipped prometheus.yml, alerts.yml and
// alertmanager.yml promise for a killed deployment when the exporter's exit
// watch is off, on top of its JVM's own start: a 5s scrape, a 5s
// evaluation and SteamDeploymentDown's 10s hold add up to 20s at worst (the
// group_wait is 0s); the rest is the remediator's verification and the
// programs' own latency. With the watch on, see TestKillBench.
const shippedBudget = 25 * time.Second

// TestShippedTimings runs the shipped files with their real timings, none
// shortened: only the addresses, the bearer token file and the operators'
// receiver (a recorder in place of the placeholder email) are changed, and
// the exporter and remediator run with their defaults. One
// deployment is SIGKILLed; the test measures until it serves again,
// started by the remediator through Prometheus and Alertmanager, and
// fails when that takes longer than shippedBudget plus the deployment's own
// start.
func TestShippedTimings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := testkit.NewHome(t)
	victim := h.Add(testkit.Spec{Name: "churn-gbm", LogicalName: "churn-gbm"})
	// The deployment's own start, as Steam starts it, up to its first
	// /ping: what a restart cannot be faster than.
	began := time.Now()
	victimProcess := h.Start(victim)
	ownStart := time.Since(began)
	victim = h.Deployment(victim.ID)

	st := startStack(t, dir, h, stackOptions{})
	prom := st.prom

	// Before the kill: Prometheus has scraped the deployment up and has
	// evaluated the rules on it, so the measurement starts from a steady
	// state, as on a real host.
	id := fmt.Sprintf("deployment_id=%q", victim.IDString())
	eventually(t, 30*time.Second, "Prometheus to see the deployment up and evaluate the rules on it", func() (bool, string) {
		// steam_host, from prometheus.yml's relabeling, is what
		// alertmanager.yml's inhibit rule compares.
		up, err := prom.query(`steam_deployment_up{` + id + `, steam_host="127.0.0.1"} == 1`)
		if err != nil || len(up) != 1 {
			return false, fmt.Sprint(up, err)
		}
		var rules struct {
			Groups []struct {
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"groups"`
		}
		err = prom.get("/api/v1/rules", nil, &rules)
		evaluated := err == nil && len(rules.Groups) > 0
		for _, g := range rules.Groups {
			evaluated = evaluated && g.LastEvaluation.After(began)
		}
		return evaluated, fmt.Sprintf("rule groups %+v (%v)", rules.Groups, err)
	})

	oldPID := victimProcess.Pid
	killed := time.Now()
	testkit.Kill(t, victimProcess)
	t.Logf("SIGKILLed deployment %s (PID %d); its own start takes %s", victim.Name, oldPID, ownStart.Round(time.Millisecond))

	ping := fmt.Sprintf("http://127.0.0.1:%d/ping", victim.Port)
	limit := shippedBudget + ownStart
	testkit.EventuallyEvery(t, limit+30*time.Second, 20*time.Millisecond, "the deployment to serve /ping again", func() (bool, string) {
		code, err := httpGet(ping)
		return code == http.StatusOK, fmt.Sprint(code, err)
	})
	serving := time.Since(killed)
	// The remediator records the new PID right after the java answers.
	eventually(t, 20*time.Second, "the new PID in Steam's row", func() (bool, string) {
		pid := h.Deployment(victim.ID).PID
		return pid != 0 && pid != int64(oldPID), fmt.Sprintf("process_id %d", pid)
	})
	t.Logf("kill → serving with the shipped timings: %s (budget %s + the deployment's own start %s)",
		serving.Round(time.Millisecond), shippedBudget, ownStart.Round(time.Millisecond))
	if serving > limit {
		t.Errorf("kill → serving took %s, more than %s + %s", serving.Round(time.Millisecond), shippedBudget, ownStart.Round(time.Millisecond))
	}
	for _, name := range st.operators.alertnames() {
		if name == "SteamDeploymentDown" {
			t.Errorf("the operators' receiver got SteamDeploymentDown: the shipped route must send it to the remediator only")
		}
	}
}

// stack is the loop's programs, run for one test from the built binary and
// Debian's Prometheus and Alertmanager with the shipped files: the
// exporter, the remediator (with a bearer token and --webhook.match, as on
// a host among many), Alertmanager (its operators' receiver a recorder) and
// Prometheus.
type stack struct {
	exporterAddr, remediatorAddr, prometheusAddr, alertmanagerAddr string
	tokenFile                                                      string
	operators                                                      *recorder
	prom                                                           promAPI
}

// stackOptions are what a test changes in the shipped files; the zero
// value changes nothing but addresses and the token file.
type stackOptions struct {
	// rules replaces alerts.yml (e.g. dashboards.ShortenHolds of it).
	rules []byte
	// interval, when set, replaces prometheus.yml's intervals.
	interval time.Duration
	// timers holds Alertmanager's group_wait, group_interval and
	// repeat_interval; its addresses are the stack's.
	timers dashboards.AlertmanagerOverrides
	// env is the exporter's and remediator's environment; nil puts the
	// home's java first in PATH.
	env                          []string
	exporterArgs, remediatorArgs []string
}

// startStack starts the stack on h's Steam home and waits until every
// program answers; everything is stopped at the end of the test.
func startStack(t *testing.T, dir string, h *testkit.Home, o stackOptions) *stack {
	t.Helper()
	prometheusBin := testkit.RequireTool(t, "prometheus")
	alertmanagerBin := testkit.RequireTool(t, "prometheus-alertmanager")
	bin := testkit.Binary(t)
	addr := func() string { return testkit.LoopbackAddr(t) }
	st := &stack{exporterAddr: addr(), remediatorAddr: addr(), prometheusAddr: addr(), alertmanagerAddr: addr()}
	st.prom = promAPI{base: "http://" + st.prometheusAddr}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	st.tokenFile = writeFile(t, filepath.Join(dir, "webhook-token"), []byte(hex.EncodeToString(token)+"\n"))

	env := o.env
	if env == nil {
		env = append(os.Environ(), "PATH="+filepath.Dir(h.Java)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	start(t, dir, "exporter", env, append([]string{bin, "exporter", "--steam.home=" + h.Home.Dir,
		"--web.listen-address=" + st.exporterAddr}, o.exporterArgs...)...)
	start(t, dir, "remediator", env, append([]string{bin, "remediator", "--steam.home=" + h.Home.Dir,
		"--web.listen-address=" + st.remediatorAddr, "--webhook.bearer-token-file=" + st.tokenFile,
		"--webhook.match=instance=" + st.exporterAddr}, o.remediatorArgs...)...)

	st.operators = newRecorder()
	operatorsServer := httptest.NewServer(st.operators)
	t.Cleanup(operatorsServer.Close)
	am := o.timers
	am.RemediatorURL, am.CredentialsFile, am.OperatorsURL = "http://"+st.remediatorAddr+"/webhook", st.tokenFile, operatorsServer.URL
	amConfig, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, am)
	if err != nil {
		t.Fatal(err)
	}
	// No gossip: a single, private Alertmanager.
	amArgs, err := promstack.Alertmanager(alertmanagerBin, promstack.Instance{
		Dir: filepath.Join(dir, "alertmanager"), Addr: st.alertmanagerAddr, Config: amConfig})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "alertmanager", nil, amArgs...)

	rules := o.rules
	if rules == nil {
		rules = dashboards.AlertRules
	}
	promConfig, err := dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, dashboards.PrometheusOverrides{
		ExporterAddr:     st.exporterAddr,
		RemediatorAddr:   st.remediatorAddr,
		AlertmanagerAddr: st.alertmanagerAddr,
		Interval:         o.interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	promArgs, err := promstack.Prometheus(prometheusBin, promstack.Instance{
		Dir: filepath.Join(dir, "prometheus"), Addr: st.prometheusAddr, Config: promConfig,
		Files: map[string][]byte{"alerts.yml": rules}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "prometheus", nil, promArgs...)
	waitOK(t, "http://"+st.exporterAddr+"/metrics", "http://"+st.remediatorAddr+"/-/ready",
		"http://"+st.alertmanagerAddr+"/-/ready", "http://"+st.prometheusAddr+"/-/ready")
	return st
}
