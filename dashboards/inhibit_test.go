package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestInhibitRules runs the real Alertmanager with the shipped
// configuration, sends it alerts as Prometheus would, and asks it which it
// suppresses: amtool check-config only proves the inhibit rule parses.
func TestInhibitRules(t *testing.T) {
	dir := t.TempDir()
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(sink.Close)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config, err := AdaptAlertmanagerConfig(AlertmanagerConfig, AlertmanagerOverrides{
		RemediatorURL: sink.URL, CredentialsFile: token, OperatorsURL: sink.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	am := testkit.NewAlertmanagerWithConfig(t, config)
	am.Start()
	base := am.URL()

	exporter := func(alertname, host, id string) map[string]string {
		return map[string]string{"alertname": alertname, "severity": "critical", "job": ExporterJob,
			"instance": host + ":9732", "steam_host": host, "deployment_id": id, "deployment": "d" + id}
	}
	gaveUp := map[string]string{"alertname": "SteamRemediationGaveUp", "severity": "critical", "job": RemediatorJob,
		"instance": "steam1:9733", "steam_host": "steam1", "deployment_id": "7"}
	for _, tc := range []struct {
		name       string
		labels     map[string]string
		suppressed bool
	}{
		{"the gave-up deployment's Down", exporter("SteamDeploymentDown", "steam1", "7"), true},
		{"its NotRecovered", exporter("SteamDeploymentNotRecovered", "steam1", "7"), true},
		{"its Unresponsive", exporter("SteamDeploymentUnresponsive", "steam1", "7"), true},
		{"its Exited", exporter("SteamDeploymentExited", "steam1", "7"), true},
		{"its Flapping", exporter("SteamDeploymentFlapping", "steam1", "7"), false},
		{"another deployment's Down", exporter("SteamDeploymentDown", "steam1", "8"), false},
		{"the same id's Down on another host", exporter("SteamDeploymentDown", "steam2", "7"), false},
		{"GaveUp itself", gaveUp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			postAlerts(t, base, gaveUp, tc.labels)
			var state string
			var inhibitedBy []string
			testkit.Eventually(t, 10*time.Second, "the inhibitor to judge the alert", func() bool {
				state, inhibitedBy = alertStatus(t, base, tc.labels)
				// The source must be known to the inhibitor first.
				return state != "" && (!tc.suppressed || state == "suppressed")
			})
			// An alert wrongly suppressed may need a moment too.
			time.Sleep(200 * time.Millisecond)
			state, inhibitedBy = alertStatus(t, base, tc.labels)
			if got := state == "suppressed" && len(inhibitedBy) > 0; got != tc.suppressed {
				t.Errorf("%v: state %q inhibited by %v, want suppressed %v\n%s", tc.labels, state, inhibitedBy, tc.suppressed, am.Log())
			}
		})
	}
}

// postAlerts sends firing alerts to Alertmanager's API as Prometheus does.
func postAlerts(t *testing.T, base string, alerts ...map[string]string) {
	t.Helper()
	var body []map[string]any
	for _, labels := range alerts {
		body = append(body, map[string]any{
			"labels":   labels,
			"startsAt": time.Now().Add(-time.Minute).Format(time.RFC3339),
			"endsAt":   time.Now().Add(10 * time.Minute).Format(time.RFC3339),
		})
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting alerts: HTTP %d", resp.StatusCode)
	}
}

// alertStatus returns Alertmanager's state of the alert with exactly these
// labels, and what inhibits it; "" when Alertmanager does not have it.
func alertStatus(t *testing.T, base string, labels map[string]string) (string, []string) {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State       string   `json:"state"`
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if fmt.Sprint(a.Labels) == fmt.Sprint(labels) {
			return a.Status.State, a.Status.InhibitedBy
		}
	}
	return "", nil
}
