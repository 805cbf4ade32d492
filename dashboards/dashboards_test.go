package dashboards

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

func TestShortenHolds(t *testing.T) {
	const factor = 30
	shipped := loadRules(t)
	out, err := ShortenHolds(AlertRules, factor)
	if err != nil {
		t.Fatal(err)
	}
	short := parseRules(t, out)
	if len(short) != len(shipped) {
		t.Fatalf("%d rules, want %d", len(short), len(shipped))
	}
	shortened := 0
	for i := range shipped {
		want, got := shipped[i], short[i]
		t.Run(want.Alert, func(t *testing.T) {
			if want.For == "" {
				if got.For != "" {
					t.Errorf("for: %q, want none", got.For)
				}
			} else {
				d, err := model.ParseDuration(want.For)
				if err != nil {
					t.Fatal(err)
				}
				if d /= factor; got.For != d.String() {
					t.Errorf("for: %q, want %q", got.For, d)
				}
				if got.For != want.For {
					shortened++
				}
			}
			if hold, ok := ExpressionHolds[want.Alert]; ok {
				secs, rng := strconv.Itoa(int(hold.Seconds())), "["+model.Duration(hold).String()+"]"
				short := strconv.Itoa(int(hold.Seconds()) / factor)
				if !strings.Contains(want.Expr, "> "+secs) || strings.Contains(got.Expr, "> "+secs) ||
					!strings.Contains(got.Expr, "> "+short) || strings.Contains(got.Expr, rng) {
					t.Errorf("the hold of %s in the expression is not shortened to %ss:\n%s", hold, short, got.Expr)
				}
				shortened++
				got.Expr, want.Expr = "", ""
			}
			got.For, want.For = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("changed beyond the hold time:\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if shortened == 0 {
		t.Error("no hold time was shortened")
	}
	path := filepath.Join(t.TempDir(), "alerts.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, "promtool", "check", "rules", path)
}

func TestShortenHoldsRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rules  string
		factor int
	}{
		{"not YAML", "groups: [", 10},
		{"no groups", "rules: []", 10},
		{"bad duration", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: soon\n", 10},
		{"zero factor", string(AlertRules), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := ShortenHolds([]byte(tc.rules), tc.factor); err == nil {
				t.Errorf("no error; got\n%s", out)
			}
		})
	}
}

func TestAdaptAlertmanagerConfig(t *testing.T) {
	dir := t.TempDir()
	o := AlertmanagerOverrides{
		RemediatorURL:   "http://127.0.0.1:19733/webhook",
		CredentialsFile: filepath.Join(dir, "token"),
		OperatorsURL:    "http://127.0.0.1:19999/operators",
		GroupWait:       time.Second,
		GroupInterval:   2 * time.Second,
		RepeatInterval:  time.Minute,
	}
	out, err := AdaptAlertmanagerConfig(AlertmanagerConfig, o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, "amtool", "check-config", path)

	type route struct {
		Receiver       string   `yaml:"receiver"`
		Matchers       []string `yaml:"matchers"`
		GroupBy        []string `yaml:"group_by"`
		GroupWait      string   `yaml:"group_wait"`
		GroupInterval  string   `yaml:"group_interval"`
		RepeatInterval string   `yaml:"repeat_interval"`
		Routes         []route  `yaml:"routes"`
	}
	type config struct {
		Route     route `yaml:"route"`
		Receivers []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL          string `yaml:"url"`
				SendResolved bool   `yaml:"send_resolved"`
				HTTPConfig   struct {
					Authorization struct {
						Type            string `yaml:"type"`
						CredentialsFile string `yaml:"credentials_file"`
					} `yaml:"authorization"`
				} `yaml:"http_config"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	var shipped, adapted config
	if err := yaml.Unmarshal(AlertmanagerConfig, &shipped); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &adapted); err != nil {
		t.Fatal(err)
	}

	// Routing is unchanged; only the timers are.
	var check func(got, want route)
	check = func(got, want route) {
		if got.GroupWait != "1s" || got.GroupInterval != "2s" || got.RepeatInterval != "1m" {
			t.Errorf("route to %s: timers %s/%s/%s, want 1s/2s/1m", got.Receiver, got.GroupWait, got.GroupInterval, got.RepeatInterval)
		}
		if got.Receiver != want.Receiver || !reflect.DeepEqual(got.Matchers, want.Matchers) ||
			!reflect.DeepEqual(got.GroupBy, want.GroupBy) || len(got.Routes) != len(want.Routes) {
			t.Fatalf("route changed:\n got %+v\nwant %+v", got, want)
		}
		for i := range got.Routes {
			check(got.Routes[i], want.Routes[i])
		}
	}
	check(adapted.Route, shipped.Route)

	receivers := map[string]int{}
	for _, r := range adapted.Receivers {
		receivers[r.Name]++
		switch r.Name {
		case RemediatorReceiver:
			h := r.WebhookConfigs[0]
			if h.URL != o.RemediatorURL || h.HTTPConfig.Authorization.CredentialsFile != o.CredentialsFile ||
				h.HTTPConfig.Authorization.Type != "Bearer" || h.SendResolved {
				t.Errorf("remediator webhook %+v, want %s with bearer token file %s, send_resolved false", h, o.RemediatorURL, o.CredentialsFile)
			}
		case OperatorsReceiver:
			if len(r.WebhookConfigs) != 1 || r.WebhookConfigs[0].URL != o.OperatorsURL {
				t.Errorf("operators receiver %+v, want a webhook to %s", r, o.OperatorsURL)
			}
		}
	}
	if receivers[RemediatorReceiver] != 1 || receivers[OperatorsReceiver] != 1 || len(receivers) != 2 {
		t.Errorf("receivers %v, want one each of %s and %s", receivers, RemediatorReceiver, OperatorsReceiver)
	}
}

// TestShippedRemediatorRoute pins down the properties of the shipped route
// that the remediator relies on.
func TestShippedRemediatorRoute(t *testing.T) {
	var cfg struct {
		Route struct {
			Routes []struct {
				Receiver string   `yaml:"receiver"`
				Matchers []string `yaml:"matchers"`
				GroupBy  []string `yaml:"group_by"`
			} `yaml:"routes"`
		} `yaml:"route"`
		Receivers []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL          string `yaml:"url"`
				SendResolved *bool  `yaml:"send_resolved"`
				HTTPConfig   struct {
					Authorization struct {
						CredentialsFile string `yaml:"credentials_file"`
					} `yaml:"authorization"`
				} `yaml:"http_config"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(AlertmanagerConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	var routed bool
	for _, r := range cfg.Route.Routes {
		if r.Receiver != RemediatorReceiver {
			continue
		}
		routed = true
		if want := []string{`alertname=~"` + strings.Join(remediatorAlerts, "|") + `"`}; !reflect.DeepEqual(r.Matchers, want) {
			t.Errorf("remediator route matchers %v, want %v", r.Matchers, want)
		}
		for _, l := range []string{"deployment_id", "instance"} {
			if !strings.Contains(strings.Join(r.GroupBy, ","), l) {
				t.Errorf("remediator route groups by %v, without %s: deployments would share a notification", r.GroupBy, l)
			}
		}
	}
	if !routed {
		t.Fatal("no route to the remediator")
	}
	for _, r := range cfg.Receivers {
		if r.Name != RemediatorReceiver {
			continue
		}
		if len(r.WebhookConfigs) != 1 {
			t.Fatalf("remediator receiver has %d webhook configs, want 1", len(r.WebhookConfigs))
		}
		h := r.WebhookConfigs[0]
		if h.URL != "http://127.0.0.1:9733/webhook" {
			t.Errorf("remediator url %q, want the remediator's default address", h.URL)
		}
		if h.SendResolved == nil || *h.SendResolved {
			t.Error("send_resolved is not false: the remediator would receive resolved notifications for nothing")
		}
		if h.HTTPConfig.Authorization.CredentialsFile == "" {
			t.Error("no bearer token file: the webhook would be unauthenticated")
		}
	}
}

func TestAdaptAlertmanagerConfigRejectsBadInput(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"not YAML", "route: ["},
		{"no route", "receivers: []"},
		{"no remediator", "route:\n  receiver: steam-operators\nreceivers:\n- name: steam-operators\n"},
		{"remediator without token", "route:\n  receiver: steam-operators\nreceivers:\n- name: steam-operators\n" +
			"- name: steam-remediator\n  webhook_configs:\n  - url: http://127.0.0.1:9733/webhook\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := AlertmanagerOverrides{RemediatorURL: "http://127.0.0.1:1/webhook", CredentialsFile: "token"}
			if out, err := AdaptAlertmanagerConfig([]byte(tc.config), o); err == nil {
				t.Errorf("no error; got\n%s", out)
			}
		})
	}
}

func TestAdaptPrometheusConfig(t *testing.T) {
	addrs := PrometheusOverrides{ExporterAddr: "127.0.0.1:1", RemediatorAddr: "127.0.0.1:2", AlertmanagerAddr: "127.0.0.1:3"}
	shortened := addrs
	shortened.Interval = time.Second
	for _, tc := range []struct {
		name      string
		o         PrometheusOverrides
		intervals []string // global scrape, global evaluation, exporter's, remediator's
	}{
		{"shipped timings", addrs, []string{"15s", "5s", "5s", ""}},
		{"shortened", shortened, []string{"1s", "1s", "1s", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := AdaptPrometheusConfig(PrometheusConfig, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Global struct {
					ScrapeInterval     string `yaml:"scrape_interval"`
					EvaluationInterval string `yaml:"evaluation_interval"`
				} `yaml:"global"`
				Alerting struct {
					Alertmanagers []struct {
						StaticConfigs []struct {
							Targets []string `yaml:"targets"`
						} `yaml:"static_configs"`
					} `yaml:"alertmanagers"`
				} `yaml:"alerting"`
				ScrapeConfigs []struct {
					ScrapeInterval string `yaml:"scrape_interval"`
					StaticConfigs  []struct {
						Targets []string `yaml:"targets"`
					} `yaml:"static_configs"`
				} `yaml:"scrape_configs"`
			}
			if err := yaml.Unmarshal(out, &cfg); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := []string{cfg.Global.ScrapeInterval, cfg.Global.EvaluationInterval}
			targets := []string{cfg.Alerting.Alertmanagers[0].StaticConfigs[0].Targets[0]}
			for _, sc := range cfg.ScrapeConfigs {
				got = append(got, sc.ScrapeInterval)
				targets = append(targets, sc.StaticConfigs[0].Targets[0])
			}
			if !reflect.DeepEqual(got, tc.intervals) {
				t.Errorf("intervals %v, want %v", got, tc.intervals)
			}
			if want := []string{tc.o.AlertmanagerAddr, tc.o.ExporterAddr, tc.o.RemediatorAddr}; !reflect.DeepEqual(targets, want) {
				t.Errorf("targets %v, want %v", targets, want)
			}
			// Changed as text: every comment and quote stays.
			for _, want := range []string{`"` + tc.o.ExporterAddr + `"`, "# steam_host: the target's host name"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the adapted file lost %q", want)
				}
			}
		})
	}
}
