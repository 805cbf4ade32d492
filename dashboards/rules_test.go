package dashboards

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/steam-overseer/steam-overseer/remediate/webhook"
)

const runbookBase = "https://github.com/steam-overseer/steam-overseer/blob/main/docs/runbook.md#"

// remediatorAlerts are the alerts the shipped route sends to the remediator:
// the ones it acts on unless told otherwise.
var remediatorAlerts = webhook.DefaultAlertNames

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func parseRules(t *testing.T, data []byte) []rule {
	t.Helper()
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("parsing rules: %v", err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	return rules
}

func loadRules(t *testing.T) []rule { return parseRules(t, AlertRules) }

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
}

// TestRulesStyle checks the monitoring-mixins conventions on every alert.
func TestRulesStyle(t *testing.T) {
	name := regexp.MustCompile(`^Steam[A-Z][A-Za-z]+$`)
	for _, r := range loadRules(t) {
		t.Run(r.Alert+r.Record, func(t *testing.T) {
			if r.Record != "" || !name.MatchString(r.Alert) {
				t.Errorf("want an alert named Steam<CamelCase>, have alert %q record %q", r.Alert, r.Record)
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("severity %q, want critical or warning", sev)
			}
			if len(r.Labels) != 1 {
				t.Errorf("labels %v, want severity only: the remediator and routes match on the series' own labels", r.Labels)
			}
			var keys []string
			for k := range r.Annotations {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if want := []string{"description", "runbook_url", "summary"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("annotations %v, want %v", keys, want)
			}
			if !strings.Contains(r.Annotations["description"], "{{ $labels.") {
				t.Errorf("description %q is not templated with the alert's labels", r.Annotations["description"])
			}
			if want := runbookBase + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("runbook_url %q, want %q", r.Annotations["runbook_url"], want)
			}
			if strings.HasSuffix(r.Annotations["summary"], " ") || !strings.HasSuffix(r.Annotations["summary"], ".") {
				t.Errorf("summary %q: want one sentence ending with a full stop", r.Annotations["summary"])
			}
			// Alerts grouped into one notification share its summary.
			if strings.Contains(r.Annotations["summary"], "{{") {
				t.Errorf("summary %q is templated: want a static one, the details in the description", r.Annotations["summary"])
			}
		})
	}
}

// TestRulesUseTheContract checks every selector of every rule against the
// metric contract, the shipped job names, and counters against rate().
func TestRulesUseTheContract(t *testing.T) {
	jobs := []string{ExporterJob, RemediatorJob}
	for _, r := range loadRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			sels, err := selectors(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range sels {
				m, ok := lookupMetric(s.metric)
				if !ok {
					t.Errorf("unknown metric %s", s.metric)
					continue
				}
				for _, mt := range s.matchers {
					if !m.hasLabel(mt.label) {
						t.Errorf("%s has no label %s", s.metric, mt.label)
					}
				}
				if job, ok := s.matcher("job"); ok && !slices.Contains(jobs, job.value) {
					t.Errorf("%s selects job %q, which prometheus.yml does not scrape", s, job.value)
				}
				for _, p := range counterProblems(r.Alert, s) {
					t.Error(p)
				}
			}
		})
	}
}

type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// ruleTestFiles are the promtool unit tests of alerts.yml: at a 1m
// evaluation interval for what spans hours, at the shipped 5s for holds of
// seconds, and the JVM alerts' own.
var ruleTestFiles = []string{"alerts_test.yml", "alerts_seconds_test.yml", "alerts_jvm_test.yml"}

// TestEveryAlertIsUnitTested makes sure the promtool tests have, for every
// alert, a case where it fires and one where it must stay quiet: promtool
// itself does not complain about an untested rule.
func TestEveryAlertIsUnitTested(t *testing.T) {
	fires, quiet := map[string]int{}, map[string]int{}
	for _, name := range ruleTestFiles {
		var f ruleTestFile
		readYAML(t, name, &f)
		if !slices.Contains(f.RuleFiles, "alerts.yml") {
			t.Fatalf("%s tests %v, not alerts.yml", name, f.RuleFiles)
		}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			if fires[r.Alert] == 0 {
				t.Error("no test where it fires")
			}
			if quiet[r.Alert] == 0 {
				t.Error("no test where it stays quiet")
			}
		})
	}
}

// TestPrometheusConfigMatchesRules checks the example prometheus.yml
// against what the rules, the alert route and the dashboard assume.
func TestPrometheusConfigMatchesRules(t *testing.T) {
	type relabel struct {
		SourceLabels []string `yaml:"source_labels"`
		Regex        string   `yaml:"regex"`
		TargetLabel  string   `yaml:"target_label"`
	}
	var cfg struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		RuleFiles []string `yaml:"rule_files"`
		Alerting  struct {
			Alertmanagers []any `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName        string    `yaml:"job_name"`
			ScrapeInterval string    `yaml:"scrape_interval"`
			RelabelConfigs []relabel `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(PrometheusConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	var jobs []string
	longest := time.Duration(0)
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
		interval := sc.ScrapeInterval
		if interval == "" {
			interval = cfg.Global.ScrapeInterval
		}
		d, err := model.ParseDuration(interval)
		if err != nil {
			t.Fatalf("job %s: scrape_interval: %v", sc.JobName, err)
		}
		longest = max(longest, time.Duration(d))
		// The inhibit rule of alertmanager.yml compares steam_host.
		want := []relabel{{[]string{"steam_host", "__address__"}, ";(.+):[0-9]+", "steam_host"}}
		if !reflect.DeepEqual(sc.RelabelConfigs, want) {
			t.Errorf("job %s relabels %+v, want %+v", sc.JobName, sc.RelabelConfigs, want)
		}
	}
	if want := []string{ExporterJob, RemediatorJob}; !reflect.DeepEqual(jobs, want) {
		t.Errorf("scrape jobs %v, want %v", jobs, want)
	}
	if !reflect.DeepEqual(cfg.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("rule_files %v, want [alerts.yml]", cfg.RuleFiles)
	}
	if len(cfg.Alerting.Alertmanagers) == 0 {
		t.Error("no Alertmanager to send alerts to")
	}
	// alerts_seconds_test.yml tests the holds of seconds at this interval.
	var seconds struct {
		EvaluationInterval string `yaml:"evaluation_interval"`
	}
	readYAML(t, "alerts_seconds_test.yml", &seconds)
	if cfg.Global.EvaluationInterval != seconds.EvaluationInterval {
		t.Errorf("evaluation_interval %q, but alerts_seconds_test.yml tests at %q", cfg.Global.EvaluationInterval, seconds.EvaluationInterval)
	}

	// $__rate_interval is computed from the data source's scrape interval:
	// the longest one, or a rate() of the slower job has too few samples.
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type      string `yaml:"type"`
			IsDefault bool   `yaml:"isDefault"`
			JSONData  struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join("provisioning", "datasources", "steam-overseer.yml"), &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("datasource provisioning %+v, want apiVersion 1 and one prometheus data source", ds)
	}
	if got := ds.Datasources[0].JSONData.TimeInterval; got != model.Duration(longest).String() {
		t.Errorf("data source timeInterval %q, want prometheus.yml's longest scrape_interval %s", got, model.Duration(longest))
	}
	// Grafana refuses to provision a second default data source, and most
	// Grafanas already have one.
	if ds.Datasources[0].IsDefault {
		t.Error("provisioned data source is isDefault: it breaks provisioning where a default exists")
	}
}

func TestDashboardProvisioning(t *testing.T) {
	var p struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join("provisioning", "dashboards", "steam-overseer.yml"), &p)
	if p.APIVersion != 1 || len(p.Providers) != 1 || p.Providers[0].Type != "file" || p.Providers[0].Options.Path == "" {
		t.Errorf("dashboard provisioning %+v, want apiVersion 1 and one file provider with a path", p)
	}
}
