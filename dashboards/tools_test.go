package dashboards

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// runTool runs a tool in this package's folder, where the shipped files are,
// and returns its output; a non-zero exit fails the test with that output.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testkit.RequireTool(t, name), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestShippedFilesPassTheTools(t *testing.T) {
	for _, tc := range []struct {
		name string
		tool string
		args []string
	}{
		{"promtool check rules", "promtool", []string{"check", "rules", "alerts.yml"}},
		{"promtool test rules", "promtool", append([]string{"test", "rules"}, ruleTestFiles...)},
		{"promtool check config", "promtool", []string{"check", "config", "prometheus.yml"}},
		{"amtool check-config", "amtool", []string{"check-config", "alertmanager.yml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := runTool(t, tc.tool, tc.args...)
			if !strings.Contains(out, "SUCCESS") || strings.Contains(out, "FAILED") {
				t.Errorf("%s did not succeed:\n%s", tc.name, out)
			}
		})
	}
}

// TestAlertmanagerRoutes asks Alertmanager's own router where each alert of
// alerts.yml goes: the remediator's alerts to the remediator only, every
// other alert to people.
func TestAlertmanagerRoutes(t *testing.T) {
	rules := loadRules(t)
	for _, r := range rules {
		want := OperatorsReceiver
		if slices.Contains(remediatorAlerts, r.Alert) {
			want = RemediatorReceiver
		}
		t.Run(r.Alert, func(t *testing.T) {
			out := runTool(t, "amtool", "config", "routes", "test", "--config.file=alertmanager.yml",
				"alertname="+r.Alert, "severity="+r.Labels["severity"],
				"job=steam-exporter", "instance=steam1:9732", "deployment_id=7", "deployment=churn-gbm")
			var got []string
			for _, line := range strings.Split(out, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "Warning:") {
					got = append(got, line)
				}
			}
			if len(got) != 1 || got[0] != want {
				t.Errorf("%s goes to %q, want %q", r.Alert, got, want)
			}
		})
	}
}
