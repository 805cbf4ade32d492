package dashboards

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// TestExitedRoutedAtOnce: the exporter's SteamDeploymentExited has already
// settled, so the remediator's route sends it with the least group_wait
// Alertmanager takes (0s; group_interval and repeat_interval cannot be 0).
func TestExitedRoutedAtOnce(t *testing.T) {
	type route struct {
		Receiver  string   `yaml:"receiver"`
		Matchers  []string `yaml:"matchers"`
		GroupWait string   `yaml:"group_wait"`
		Routes    []route  `yaml:"routes"`
	}
	var file struct {
		Route route `yaml:"route"`
	}
	if err := yaml.Unmarshal(AlertmanagerConfig, &file); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range file.Route.Routes {
		if !strings.Contains(strings.Join(r.Matchers, " "), "SteamDeploymentExited") {
			continue
		}
		found = true
		if r.Receiver != RemediatorReceiver || r.GroupWait != "0s" {
			t.Errorf("SteamDeploymentExited goes to %s with group_wait %q, want %s with 0s", r.Receiver, r.GroupWait, RemediatorReceiver)
		}
	}
	if !found {
		t.Error("no route matches SteamDeploymentExited")
	}
}
