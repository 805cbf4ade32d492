// Package e2e proves steam-overseer's whole loop with the real programs:
// the built binary's exporter and remediator, Debian's prometheus and
// prometheus-alertmanager running the shipped rules and route, and three
// deployments on real Jetty (Debian's Jetty 9.4 under the real java, started
// as Steam starts them) in a Steam home with Steam's schema. One deployment is
// SIGKILLed, another SIGSTOPped (alive, port open, answering nothing); the
// test follows each until it serves again under a new PID recorded in Steam's
// row, then runs every query of the shipped dashboard against that
// Prometheus.
package e2e

import (
	"context"
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
	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
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

// loopTimers are Alertmanager's timers in the loop's tests: a first
// notification after 1s, not the shipped 30s.
var loopTimers = dashboards.AlertmanagerOverrides{
	GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 20 * time.Second}

func TestLoop(t *testing.T) {
	t.Parallel()
	testkit.RequireTool(t, "prometheus")
	testkit.RequireTool(t, "prometheus-alertmanager")
	h := testkit.NewJettyHome(t)
	var deployments []steam.Deployment
	var processes []*os.Process
	for _, name := range []string{"churn-gbm", "fraud-glm", "ltv-drf"} {
		d, p := testkit.RunJetty(t, h, testkit.Spec{Name: name, LogicalName: name}, jetty.War{})
		deployments = append(deployments, d)
		processes = append(processes, p.Process)
	}
	inspector, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}

	rules, err := dashboards.ShortenHolds(dashboards.AlertRules, holdFactor)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped files: only addresses, intervals, hold times and
	// Alertmanager's timers change. The exporter probes every second; a
	// deployment older than 5s is expected to answer.
	st := startStack(t, t.TempDir(), h, stackOptions{
		rules: rules, interval: interval, timers: loopTimers, env: testkit.JettyEnv(t, h),
		exporterArgs: []string{"--log.level=debug", "--probe.interval=1s", "--probe.timeout=500ms", "--probe.start-grace=5s"},
		remediatorArgs: []string{"--remediate.start-timeout=60s", "--java.path=" + h.Java,
			"--probe.timeout=500ms", "--probe.start-grace=5s", "--remediate.hung-after=3s", "--log.level=debug"},
	})
	exporterAddr, remediatorAddr, prom, operators := st.exporterAddr, st.remediatorAddr, st.prom, st.operators

	// Steady predictions to the deployment never touched, as the demo
	// sends, for the dashboard's traffic row.
	stopPredicting := make(chan struct{})
	t.Cleanup(func() { close(stopPredicting) })
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPredicting:
				return
			case <-tick.C:
			}
			if resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/predict?x=1", deployments[0].Port)); err == nil {
				resp.Body.Close()
			}
		}
	}()

	// Before: Prometheus sees all three up, and both steam-overseer targets.
	prom.waitUp(t, 3, 2)
	loop := loopRun{h: h, prom: prom, inspector: inspector, exporterAddr: exporterAddr,
		remediatorMetrics: "http://" + remediatorAddr + "/metrics"}
	loopStart := time.Now()

	// A SIGKILL: the row's PID is dead, SteamDeploymentDown fires.
	killed := loop.heal(t, deployments[1], processes[1], syscall.SIGKILL,
		`steam_deployment_up{%s} == 0`, "SteamDeploymentDown")
	// A SIGSTOP: the JVM lives and holds its port but answers nothing (as
	// in a hang or a long GC pause); the exporter's probe fails and
	// SteamDeploymentUnresponsive fires, once the JVM is older than the
	// probe's start grace.
	hung := loop.heal(t, deployments[2], processes[2], syscall.SIGSTOP,
		`steam_deployment_probe_success{%s} == 0 and on(deployment_id) steam_deployment_up == 1`, "SteamDeploymentUnresponsive")

	// The other one was never touched.
	registry := steam.NewRegistry(h.Home)
	now, err := registry.Deployment(context.Background(), deployments[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if int(now.PID) != processes[0].Pid || !testkit.Alive(processes[0].Pid) {
		t.Errorf("deployment %s: row PID %d, started as %d: it was touched", now.Name, now.PID, processes[0].Pid)
	}

	t.Logf("kill → serving: %s; hang → serving: %s", killed.Round(time.Millisecond), hung.Round(time.Millisecond))

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

// start runs a program for the rest of the test (see service).
func start(t *testing.T, dir, name string, env []string, args ...string) *service {
	t.Helper()
	s := newService(t, dir, name, env, args...)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// service is a program the test runs, which it may kill and start again
// (the chaos run does): its output goes to a log file that is shown when the
// test fails; it is SIGKILLed and waited for at the end.
type service struct {
	name, logPath string
	args, env     []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func newService(t *testing.T, dir, name string, env []string, args ...string) *service {
	s := &service{name: name, logPath: filepath.Join(dir, name+".log"), args: args, env: env}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			out, _ := os.ReadFile(s.logPath)
			if len(out) > 8000 {
				out = out[len(out)-8000:]
			}
			t.Logf("---- %s (%s) log tail ----\n%s", name, strings.Join(args, " "), out)
		}
	})
	return s
}

// start starts the program, its output appended to its log.
func (s *service) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = s.env
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	return nil
}

// kill SIGKILLs the program, if it runs, and waits until it is gone.
func (s *service) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// pid is the running program's PID, 0 when it is not running.
func (s *service) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	select {
	case <-s.exited:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// alertmanagerConfig is the shipped alertmanager.yml with the remediator's
// webhook at remediatorURL and the test's timers. People get every alert
// but the remediator's; here they are a recorder, returned.
func alertmanagerConfig(t *testing.T, remediatorURL, tokenFile string) ([]byte, *recorder) {
	t.Helper()
	operators := newRecorder()
	operatorsServer := httptest.NewServer(operators)
	t.Cleanup(operatorsServer.Close)
	o := loopTimers
	o.RemediatorURL, o.CredentialsFile, o.OperatorsURL = remediatorURL, tokenFile, operatorsServer.URL
	config, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, o)
	if err != nil {
		t.Fatal(err)
	}
	return config, operators
}

// prometheusConfig returns the shipped prometheus.yml with o's addresses
// and the test's interval, and the shipped rules with holds shortened by
// holdFactor, for alerts.yml.
func prometheusConfig(t *testing.T, o dashboards.PrometheusOverrides) (config, rules []byte) {
	t.Helper()
	rules, err := dashboards.ShortenHolds(dashboards.AlertRules, holdFactor)
	if err != nil {
		t.Fatal(err)
	}
	o.Interval = interval
	config, err = dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, o)
	if err != nil {
		t.Fatal(err)
	}
	return config, rules
}

// waitOK waits until every URL answers 200.
func waitOK(t *testing.T, urls ...string) {
	t.Helper()
	for _, u := range urls {
		eventually(t, 60*time.Second, u+" to answer 200", func() (bool, string) {
			code, err := httpGet(u)
			return code == http.StatusOK, fmt.Sprint(code, err)
		})
	}
}

// waitUp waits until Prometheus sees this many deployments up and
// steam-overseer targets (exporters and remediators) up.
func (p promAPI) waitUp(t *testing.T, deployments, targets int) {
	t.Helper()
	eventually(t, 60*time.Second, "Prometheus to see every deployment and target up", func() (bool, string) {
		up, err := p.query(`steam_deployment_up == 1`)
		ts, err2 := p.query(fmt.Sprintf(`up{job=~"%s|%s"} == 1`, dashboards.ExporterJob, dashboards.RemediatorJob))
		return len(up) == deployments && len(ts) == targets,
			fmt.Sprintf("%d deployments up, %d targets up (%v %v)", len(up), len(ts), err, err2)
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
	testkit.EventuallyEvery(t, timeout, 100*time.Millisecond, what, cond)
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

// metricSum adds up the counter or gauge series of name on a /metrics page
// whose label has value (every series when label is ""); 0 when there are
// none yet.
func metricSum(t *testing.T, metricsURL, name, label, value string) float64 {
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
		matches := label == ""
		for _, l := range m.GetLabel() {
			matches = matches || l.GetName() == label && l.GetValue() == value
		}
		if matches {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
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

// loopRun is what TestLoop's faults are followed through.
type loopRun struct {
	h                 *testkit.Home
	prom              promAPI
	inspector         *procid.Inspector
	exporterAddr      string
	remediatorMetrics string
}

// heal sends sig to victim's java and follows the loop step by step until
// the deployment serves again under a new PID in Steam's row: Prometheus
// sees the fault (downQuery, a format taking the deployment_id matcher),
// alertname fires, Alertmanager delivers it, the remediator restarts the
// deployment. It returns the time from the signal to serving.
func (l loopRun) heal(t *testing.T, victim steam.Deployment, victimProcess *os.Process, sig syscall.Signal,
	downQuery, alertname string) time.Duration {
	t.Helper()
	id := fmt.Sprintf("deployment_id=%q", victim.IDString())
	var restartsBefore float64
	eventually(t, 30*time.Second, "Prometheus to have the victim's restart count", func() (bool, string) {
		v, err := l.prom.query(`steam_deployment_restarts_total{` + id + `}`)
		if len(v) == 1 {
			restartsBefore = v[0].value
		}
		return len(v) == 1, fmt.Sprint(v, err)
	})
	queuedBefore := metricSum(t, l.remediatorMetrics, "steam_remediator_alerts_total", "outcome", "queued")
	acceptedBefore := metricSum(t, l.remediatorMetrics, "steam_remediator_webhook_requests_total", "code", "200")

	oldPID := victimProcess.Pid
	faulted := time.Now()
	if err := victimProcess.Signal(sig); err != nil {
		t.Fatalf("sending %s to %d: %v", sig, oldPID, err)
	}
	since := func() time.Duration { return time.Since(faulted).Round(time.Millisecond) }
	t.Logf("sent signal %d (%s) to deployment %s (id %d, PID %d, port %d)", sig, sig, victim.Name, victim.ID, oldPID, victim.Port)

	// 1. Prometheus sees the fault.
	eventually(t, 30*time.Second, "Prometheus to see "+downQuery, func() (bool, string) {
		v, err := l.prom.query(fmt.Sprintf(downQuery, id))
		return len(v) == 1, fmt.Sprint(v, err)
	})
	t.Logf("%s: Prometheus sees %s", since(), fmt.Sprintf(downQuery, id))

	// 2. The alert fires, with the labels the remediator acts on.
	var fired promAlert
	testkit.EventuallyEvery(t, 30*time.Second, 50*time.Millisecond, alertname+" to fire", func() (bool, string) {
		alerts, err := l.prom.alerts()
		for _, a := range alerts {
			if a.Labels["alertname"] == alertname && a.Labels["deployment_id"] == victim.IDString() && a.State == "firing" {
				fired = a
				return true, ""
			}
		}
		return false, fmt.Sprint(alerts, err)
	})
	if fired.Labels["deployment"] != victim.Name || fired.Labels["instance"] != l.exporterAddr {
		t.Errorf("%s labels %v, want deployment %s and instance %s", alertname, fired.Labels, victim.Name, l.exporterAddr)
	}
	t.Logf("%s: %s fires (active since %s)", since(), alertname, fired.ActiveAt.Sub(faulted).Round(time.Millisecond))

	// 3. Alertmanager calls the remediator's webhook, which queues it.
	eventually(t, 20*time.Second, "Alertmanager to deliver the alert to the remediator", func() (bool, string) {
		queued := metricSum(t, l.remediatorMetrics, "steam_remediator_alerts_total", "outcome", "queued")
		accepted := metricSum(t, l.remediatorMetrics, "steam_remediator_webhook_requests_total", "code", "200")
		return queued > queuedBefore && accepted > acceptedBefore, fmt.Sprintf("queued %v, 200s %v", queued, accepted)
	})
	t.Logf("%s: the remediator accepted the webhook and queued the alert", since())

	// 4. The deployment is back and serving.
	ping := fmt.Sprintf("http://127.0.0.1:%d/ping", victim.Port)
	testkit.EventuallyEvery(t, 60*time.Second, 20*time.Millisecond, "the deployment to serve /ping again", func() (bool, string) {
		code, err := httpGet(ping)
		return code == http.StatusOK, fmt.Sprint(code, err)
	})
	serving := time.Since(faulted)
	t.Logf("%s: the deployment serves /ping again", since())

	// 5. Its new PID is in Steam's row: not the old one, alive, its java,
	// and the process listening on its port. The old one is gone.
	registry := steam.NewRegistry(l.h.Home)
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
	if p := l.inspector.Inspect(newPID, identity); p.Status != procid.StatusRunning {
		t.Fatalf("new PID %d in the row is %s, not the deployment's running java", newPID, p.Status)
	}
	listeners, err := l.inspector.Listeners(context.Background(), int(victim.Port))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(listeners, newPID) {
		t.Fatalf("port %d is served by %v, not by the PID %d in the row", victim.Port, listeners, newPID)
	}
	if testkit.Alive(oldPID) {
		t.Fatalf("the old java %d still lives beside the new %d", oldPID, newPID)
	}
	t.Logf("%s: Steam's row holds the new PID %d (was %d)", since(), newPID, oldPID)

	// 6. Prometheus sees it up again, restarted once more.
	eventually(t, 20*time.Second, "steam_deployment_up to return to 1", func() (bool, string) {
		v, err := l.prom.query(`steam_deployment_up{` + id + `} == 1`)
		return len(v) == 1, fmt.Sprint(v, err)
	})
	eventually(t, 20*time.Second, "steam_deployment_restarts_total to go up", func() (bool, string) {
		v, err := l.prom.query(`steam_deployment_restarts_total{` + id + `}`)
		return len(v) == 1 && v[0].value > restartsBefore, fmt.Sprint(v, err)
	})
	t.Logf("%s: Prometheus sees steam_deployment_up 1 and the restart counted", since())
	return serving
}
