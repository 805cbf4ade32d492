// Package e2e proves steam-overseer's whole loop with the real programs:
// the built binary's exporter and remediator, Debian's prometheus and
// prometheus-alertmanager running the shipped rules and route, and three
// deployments (fake scoring services started as Steam starts them) in a Steam
// home with Steam's schema. One deployment is SIGKILLed; the test follows it
// until it serves again under a new PID recorded in Steam's row, then runs
// every query of the shipped dashboard against that Prometheus.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/steam-overseer/steam-overseer/dashboards"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

const (
	// holdFactor divides the rules' hold times: SteamDeploymentDown's 1m
	// becomes 2s, SteamDeploymentNotRecovered's 15m 30s.
	holdFactor = 30
	// interval is Prometheus' scrape and evaluation interval.
	interval = time.Second
	// rateInterval stands for Grafana's $__rate_interval: four scrapes and
	// more, so that every rate() has samples to work with.
	rateInterval = "15s"
)

func TestLoop(t *testing.T) {
	prometheusBin := steamtest.RequireTool(t, "prometheus")
	alertmanagerBin := steamtest.RequireTool(t, "prometheus-alertmanager")
	bin := steamtest.Binary(t)

	dir := t.TempDir()
	h := steamtest.NewHome(t)
	var deployments []steam.Deployment
	var processes []*os.Process
	for _, name := range []string{"churn-gbm", "fraud-glm", "ltv-drf"} {
		d, p := h.Run(steamfixture.Spec{Name: name, LogicalName: name})
		deployments = append(deployments, d)
		processes = append(processes, p)
	}
	inspector, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}

	addr := func() string {
		port, err := steamfixture.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	exporterAddr, remediatorAddr, prometheusAddr, alertmanagerAddr := addr(), addr(), addr(), addr()

	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeFile(t, filepath.Join(dir, "webhook-token"), []byte(hex.EncodeToString(token)+"\n"))

	// The exporter and the remediator, from the built binary.
	env := append(os.Environ(), "PATH="+filepath.Dir(h.Java)+string(os.PathListSeparator)+os.Getenv("PATH"))
	start(t, dir, "exporter", env, bin, "exporter", "--steam.home="+h.Home.Dir,
		"--web.listen-address="+exporterAddr, "--log.level=debug")
	start(t, dir, "remediator", env, bin, "remediator", "--steam.home="+h.Home.Dir,
		"--web.listen-address="+remediatorAddr, "--webhook.bearer-token-file="+tokenFile,
		// As on a host among many: the alert's instance is this host's
		// exporter.
		"--webhook.match=instance="+exporterAddr,
		"--remediate.start-timeout=20s", "--log.level=debug")

	// People get everything but SteamDeploymentDown; here they are a
	// recorder that must never hear of it.
	operators := newRecorder()
	operatorsServer := httptest.NewServer(operators)
	t.Cleanup(operatorsServer.Close)

	// Alertmanager with the shipped route: same receivers, matchers,
	// grouping, send_resolved and bearer token file; only the addresses and
	// timers change.
	amConfig, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, dashboards.AlertmanagerOverrides{
		RemediatorURL:   "http://" + remediatorAddr + "/webhook",
		CredentialsFile: tokenFile,
		OperatorsURL:    operatorsServer.URL,
		GroupWait:       time.Second,
		GroupInterval:   2 * time.Second,
		RepeatInterval:  20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "alertmanager", nil, alertmanagerBin,
		"--config.file="+writeFile(t, filepath.Join(dir, "alertmanager.yml"), amConfig),
		"--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address="+alertmanagerAddr,
		"--cluster.listen-address=") // no gossip: a single, private Alertmanager

	// Prometheus with the shipped configuration and rules: only addresses,
	// intervals and hold times change.
	rules, err := dashboards.ShortenHolds(dashboards.AlertRules, holdFactor)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "alerts.yml"), rules)
	promConfig, err := dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, dashboards.PrometheusOverrides{
		ExporterAddr:     exporterAddr,
		RemediatorAddr:   remediatorAddr,
		AlertmanagerAddr: alertmanagerAddr,
		Interval:         interval,
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

	prom := promAPI{base: "http://" + prometheusAddr}
	victim, victimProcess := deployments[1], processes[1]
	id := fmt.Sprintf("deployment_id=%q", victim.IDString())

	// Before: Prometheus sees all three up, and both steam-overseer targets.
	eventually(t, 30*time.Second, "Prometheus to see every deployment up", func() (bool, string) {
		up, err := prom.query(`steam_deployment_up == 1`)
		targets, err2 := prom.query(fmt.Sprintf(`up{job=~"%s|%s"} == 1`, dashboards.ExporterJob, dashboards.RemediatorJob))
		return len(up) == 3 && len(targets) == 2, fmt.Sprintf("deployments up %v, targets up %v (%v %v)", up, targets, err, err2)
	})
	var restartsBefore float64
	eventually(t, 30*time.Second, "Prometheus to have the victim's restart count", func() (bool, string) {
		v, err := prom.query(`steam_deployment_restarts_total{` + id + `}`)
		if len(v) == 1 {
			restartsBefore = v[0].value
		}
		return len(v) == 1, fmt.Sprint(v, err)
	})
	remediatorMetrics := "http://" + remediatorAddr + "/metrics"
	queuedBefore := counter(t, remediatorMetrics, "steam_remediator_alerts_total", "outcome", "queued")
	acceptedBefore := counter(t, remediatorMetrics, "steam_remediator_webhook_requests_total", "code", "200")

	// The kill.
	loopStart := time.Now()
	oldPID := victimProcess.Pid
	killed := time.Now()
	steamtest.Kill(t, victimProcess)
	since := func() time.Duration { return time.Since(killed).Round(time.Millisecond) }
	t.Logf("SIGKILLed deployment %s (id %d, PID %d, port %d)", victim.Name, victim.ID, oldPID, victim.Port)

	// 1. Prometheus sees it down.
	eventually(t, 20*time.Second, "Prometheus to see the deployment down", func() (bool, string) {
		v, err := prom.query(`steam_deployment_up{` + id + `} == 0`)
		return len(v) == 1, fmt.Sprint(v, err)
	})
	t.Logf("%s: Prometheus sees steam_deployment_up 0", since())

	// 2. SteamDeploymentDown fires, with the labels the remediator acts on.
	var fired promAlert
	eventuallyEvery(t, 20*time.Second, 50*time.Millisecond, "SteamDeploymentDown to fire", func() (bool, string) {
		alerts, err := prom.alerts()
		for _, a := range alerts {
			if a.Labels["alertname"] == "SteamDeploymentDown" && a.Labels["deployment_id"] == victim.IDString() && a.State == "firing" {
				fired = a
				return true, ""
			}
		}
		return false, fmt.Sprint(alerts, err)
	})
	if fired.Labels["deployment"] != victim.Name || fired.Labels["instance"] != exporterAddr {
		t.Errorf("SteamDeploymentDown labels %v, want deployment %s and instance %s", fired.Labels, victim.Name, exporterAddr)
	}
	t.Logf("%s: SteamDeploymentDown fires (active since %s)", since(), fired.ActiveAt.Sub(killed).Round(time.Millisecond))

	// 3. Alertmanager calls the remediator's webhook, which queues it.
	eventually(t, 20*time.Second, "Alertmanager to deliver the alert to the remediator", func() (bool, string) {
		queued := counter(t, remediatorMetrics, "steam_remediator_alerts_total", "outcome", "queued")
		accepted := counter(t, remediatorMetrics, "steam_remediator_webhook_requests_total", "code", "200")
		return queued > queuedBefore && accepted > acceptedBefore, fmt.Sprintf("queued %v, 200s %v", queued, accepted)
	})
	t.Logf("%s: the remediator accepted the webhook and queued the alert", since())

	// 4. The deployment is back and serving.
	ping := fmt.Sprintf("http://127.0.0.1:%d/ping", victim.Port)
	eventuallyEvery(t, 30*time.Second, 20*time.Millisecond, "the deployment to serve /ping again", func() (bool, string) {
		code, err := httpGet(ping)
		return code == http.StatusOK, fmt.Sprint(code, err)
	})
	serving := time.Since(killed)
	t.Logf("%s: the deployment serves /ping again", since())

	// 5. Its new PID is in Steam's row: not the killed one, alive, its java,
	// and the process listening on its port.
	registry := steam.NewRegistry(h.Home)
	var newPID int
	eventually(t, 20*time.Second, "the new PID in Steam's service row", func() (bool, string) {
		d, err := registry.Deployment(context.Background(), victim.ID)
		if err != nil {
			return false, err.Error()
		}
		newPID = int(d.PID)
		return newPID > 0 && newPID != oldPID, fmt.Sprintf("process_id %d", d.PID)
	})
	identity, ok := victim.Identity()
	if !ok {
		t.Fatalf("deployment %s has no identity", victim.Name)
	}
	if p := inspector.Inspect(newPID, identity); p.Status != procid.StatusRunning {
		t.Fatalf("new PID %d in the row is %s, not the deployment's running java", newPID, p.Status)
	}
	listeners, err := inspector.Listeners(context.Background(), int(victim.Port))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(listeners, newPID) {
		t.Fatalf("port %d is served by %v, not by the PID %d in the row", victim.Port, listeners, newPID)
	}
	t.Logf("%s: Steam's row holds the new PID %d (was %d)", since(), newPID, oldPID)

	// 6. Prometheus sees it up again, restarted once more.
	eventually(t, 20*time.Second, "steam_deployment_up to return to 1", func() (bool, string) {
		v, err := prom.query(`steam_deployment_up{` + id + `} == 1`)
		return len(v) == 1, fmt.Sprint(v, err)
	})
	eventually(t, 20*time.Second, "steam_deployment_restarts_total to go up", func() (bool, string) {
		v, err := prom.query(`steam_deployment_restarts_total{` + id + `}`)
		return len(v) == 1 && v[0].value > restartsBefore, fmt.Sprint(v, err)
	})
	t.Logf("%s: Prometheus sees steam_deployment_up 1 and the restart counted", since())

	// The others were never touched.
	for i, d := range deployments {
		if d.ID == victim.ID {
			continue
		}
		now, err := registry.Deployment(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if int(now.PID) != processes[i].Pid || syscall.Kill(processes[i].Pid, 0) != nil {
			t.Errorf("deployment %s: row PID %d, started as %d: it was touched", d.Name, now.PID, processes[i].Pid)
		}
	}

	t.Logf("kill → serving: %s", serving.Round(time.Millisecond))

	// Every query of the dashboard returns data from this Prometheus.
	t.Run("dashboard queries", func(t *testing.T) {
		checkDashboardQueries(t, prom, loopStart)
	})

	if got := operators.alertnames(); slices.Contains(got, "SteamDeploymentDown") {
		t.Errorf("the operators' receiver got SteamDeploymentDown (%v): the shipped route must send it to the remediator only", got)
	} else if len(got) > 0 {
		t.Logf("the operators' receiver got %v", got)
	}
}

// checkDashboardQueries runs every target of the shipped dashboard against
// prom as Grafana would: variables from their label_values() queries, each
// multi-value variable as a regex of all its values.
func checkDashboardQueries(t *testing.T, prom promAPI, from time.Time) {
	var d struct {
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(dashboards.Dashboard, &d); err != nil {
		t.Fatal(err)
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	substitute := []string{"$__rate_interval", rateInterval}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: query %s is not a string", v.Name, v.Query)
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(selector, label)", v.Name, q)
		}
		match := strings.NewReplacer(substitute...).Replace(m[1])
		values, err := prom.labelValues(m[2], match, from, time.Now())
		if err != nil || len(values) == 0 {
			t.Fatalf("variable %s: label_values(%s, %s) = %v, %v: want values", v.Name, match, m[2], values, err)
		}
		// Grafana's escaping of a multi-value variable for a Prometheus
		// regex: each value regex-quoted, backslashes doubled for the
		// PromQL string.
		var quoted []string
		for _, value := range values {
			quoted = append(quoted, strings.ReplaceAll(regexp.QuoteMeta(value), `\`, `\\`))
		}
		substitute = append(substitute, "$"+v.Name, "("+strings.Join(quoted, "|")+")")
		t.Logf("$%s = %v", v.Name, values)
	}
	replacer := strings.NewReplacer(substitute...)

	var panels []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	queries := 0
	for _, p := range panels {
		for _, target := range p.Targets {
			queries++
			expr := replacer.Replace(target.Expr)
			t.Run(p.Title+"/"+target.RefID, func(t *testing.T) {
				if strings.Contains(expr, "$") {
					t.Fatalf("unsubstituted variable in %s", expr)
				}
				eventually(t, 20*time.Second, "data for "+expr, func() (bool, string) {
					series, err := prom.queryRange(expr, from, time.Now(), interval)
					if err != nil {
						return false, err.Error()
					}
					for _, s := range series {
						for _, v := range s.Values {
							if f, err := strconv.ParseFloat(v[1].(string), 64); err == nil && !math.IsNaN(f) {
								return true, ""
							}
						}
					}
					return false, fmt.Sprintf("%d series, no number", len(series))
				})
			})
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"`
}

// start runs a program for the rest of the test, its output in a log file
// that is shown when the test fails; it is SIGKILLed and waited for at the
// end.
func start(t *testing.T, dir, name string, env []string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	steamtest.Reap(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("---- %s (%s) log tail ----\n%s", name, strings.Join(args, " "), out)
		}
	})
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	eventuallyEvery(t, timeout, 100*time.Millisecond, what, cond)
}

// eventuallyEvery polls cond until it holds, failing the test with cond's
// last word after timeout.
func eventuallyEvery(t *testing.T, timeout, every time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, detail)
		}
		time.Sleep(every)
	}
}

var client = &http.Client{Timeout: 2 * time.Second}

func httpGet(u string) (int, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// counter reads the value of one counter series from a /metrics page; 0
// when the series does not exist yet.
func counter(t *testing.T, metricsURL, name, label, value string) float64 {
	t.Helper()
	resp, err := client.Get(metricsURL)
	if err != nil {
		t.Fatalf("scraping %s: %v", metricsURL, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", metricsURL, err)
	}
	var sum float64
	for _, m := range families[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// promAPI is the few calls of Prometheus' HTTP API the test makes.
type promAPI struct{ base string }

type promSample struct {
	labels map[string]string
	value  float64
}

type promAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	Values [][2]any          `json:"values"`
}

func (p promAPI) get(path string, params url.Values, data any) error {
	resp, err := client.Get(p.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s %v: %s %s", path, params, body.Status, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

func (p promAPI) query(q string) ([]promSample, error) {
	var data struct {
		Result []promSeries `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	var out []promSample
	for _, s := range data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out = append(out, promSample{s.Metric, v})
	}
	return out, nil
}

func (p promAPI) queryRange(q string, start, end time.Time, step time.Duration) ([]promSeries, error) {
	var data struct {
		Result []promSeries `json:"result"`
	}
	params := url.Values{
		"query": {q},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix()+1, 10)},
		"step":  {step.String()},
	}
	err := p.get("/api/v1/query_range", params, &data)
	return data.Result, err
}

func (p promAPI) labelValues(label, match string, start, end time.Time) ([]string, error) {
	var values []string
	params := url.Values{
		"match[]": {match},
		"start":   {strconv.FormatInt(start.Unix(), 10)},
		"end":     {strconv.FormatInt(end.Unix()+1, 10)},
	}
	err := p.get("/api/v1/label/"+label+"/values", params, &values)
	return values, err
}

func (p promAPI) alerts() ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.get("/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// recorder is an Alertmanager webhook receiver that remembers the alert
// names it was sent.
type recorder struct {
	mu    sync.Mutex
	names []string
}

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var payload struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(req.Body).Decode(&payload); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range payload.Alerts {
		r.names = append(r.names, a.Labels["alertname"])
	}
}

func (r *recorder) alertnames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
}
