package systemd_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/steam-overseer/steam-overseer/dashboards"
)

// TestDefaultTurnsWatchOn: the default file turns the exporter's exit watch
// on towards the Alertmanager the shipped prometheus.yml alerts, with the
// instance and steam_host labels that prometheus.yml gives the exporter's
// alerts, which alertmanager.yml groups and inhibits by and --webhook.match
// compares.
func TestDefaultTurnsWatchOn(t *testing.T) {
	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(dashboards.PrometheusConfig, &prom); err != nil {
		t.Fatal(err)
	}
	alertmanager := prom.Alerting.Alertmanagers[0].StaticConfigs[0].Targets[0]
	var exporter string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == dashboards.ExporterJob {
			exporter = sc.StaticConfigs[0].Targets[0]
		}
	}
	host, _, err := net.SplitHostPort(exporter)
	if err != nil {
		t.Fatalf("prometheus.yml's exporter target %q: %v", exporter, err)
	}

	env := directives(t, "steam-overseer.default")["EXPORTER_ARGS"]
	if len(env) != 1 {
		t.Fatalf("EXPORTER_ARGS set %d times", len(env))
	}
	var urls, labels []string
	for _, arg := range strings.Fields(strings.Trim(env[0], `"`)) {
		if v, ok := strings.CutPrefix(arg, "--alertmanager.url="); ok {
			urls = append(urls, v)
		}
		if v, ok := strings.CutPrefix(arg, "--alertmanager.label="); ok {
			labels = append(labels, v)
		}
	}
	if want := []string{"http://" + alertmanager}; !slices.Equal(urls, want) {
		t.Errorf("--alertmanager.url %v, want %v", urls, want)
	}
	slices.Sort(labels)
	if want := []string{"instance=" + exporter, "steam_host=" + host}; !slices.Equal(labels, want) {
		t.Errorf("--alertmanager.label %v, want %v", labels, want)
	}
}
