package amnotify_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/amnotify"
	"github.com/steam-overseer/steam-overseer/testkit"
)

func notifier(t *testing.T, opts amnotify.Options, logger *slog.Logger) *amnotify.Notifier {
	t.Helper()
	if logger == nil {
		logger = promslog.NewNopLogger()
	}
	n, err := amnotify.New(opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func labels(id string) map[string]string {
	return map[string]string{"alertname": "SteamDeploymentExited", "severity": "critical",
		"deployment_id": id, "deployment": "churn" + id}
}

func counter(t *testing.T, n *amnotify.Notifier, name, am string) float64 {
	t.Helper()
	return testkit.MetricSum(t, n, name, func(m *dto.Metric) bool {
		for _, l := range m.GetLabel() {
			if l.GetName() == "alertmanager" && strings.HasPrefix(l.GetValue(), am) {
				return true
			}
		}
		return am == ""
	})
}

// TestHAPair: both members of a clustered pair get the alert and its
// resolution.
func TestHAPair(t *testing.T) {
	a, b := testkit.AlertmanagerPair(t)
	n := notifier(t, amnotify.Options{Alertmanagers: []string{a.URL(), b.URL() + "/"}}, nil)
	n.Fire("7", labels("7"), map[string]string{"summary": "gone"}, time.Now())
	for _, am := range []*testkit.Alertmanager{a, b} {
		am.WaitAlert("7", true)
		if got, want := am.Alerts()["7"], labels("7"); !maps.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", am.URL(), got, want)
		}
	}
	n.Resolve("7")
	a.WaitAlert("7", false)
	b.WaitAlert("7", false)
	if got := counter(t, n, "steam_exporter_notifications_errors_total", ""); got != 0 {
		t.Errorf("errors_total = %v, want 0", got)
	}
	if problems, err := testutil.CollectAndLint(n); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestMemberDown: with one member down the other still gets the alert; the
// failure is counted, logged once, and the alert reaches the member once it
// is back.
func TestMemberDown(t *testing.T) {
	up, down := testkit.NewAlertmanager(t), testkit.NewAlertmanager(t)
	up.Start()
	var log testkit.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	n := notifier(t, amnotify.Options{Alertmanagers: []string{up.URL(), down.URL()}, ResendDelay: time.Hour}, logger)
	n.Fire("7", labels("7"), nil, time.Now())
	up.WaitAlert("7", true)
	testkit.Eventually(t, 10*time.Second, "several failed sends", func() bool {
		return counter(t, n, "steam_exporter_notifications_errors_total", down.URL()) >= 3
	})
	if got := counter(t, n, "steam_exporter_notifications_errors_total", up.URL()); got != 0 {
		t.Errorf("errors_total of the live member = %v, want 0", got)
	}
	if got := strings.Count(log.String(), "Sending alerts to Alertmanager failed"); got != 1 {
		t.Errorf("logged the failure %d times, want once\n%s", got, log.String())
	}
	down.Start()
	down.WaitAlert("7", true)
	testkit.Eventually(t, 5*time.Second, "the recovery logged", func() bool {
		return strings.Count(log.String(), "Sending alerts to Alertmanager again") == 1
	})
}

// TestAlertmanagerRestart: a restarted Alertmanager has lost its alerts;
// the resend brings back the ones still firing, not the resolved-and-gone.
func TestAlertmanagerRestart(t *testing.T) {
	am := testkit.NewAlertmanager(t)
	am.Start()
	n := notifier(t, amnotify.Options{Alertmanagers: []string{am.URL()}, ResendDelay: time.Second}, nil)
	n.Fire("7", labels("7"), nil, time.Now())
	n.Fire("8", labels("8"), nil, time.Now())
	am.WaitAlert("7", true)
	am.WaitAlert("8", true)
	n.Resolve("8")
	am.WaitAlert("8", false)
	// Alertmanager keeps alerts in memory only: the new process holds what
	// was sent to it. (Checking it empty raced the 1s resend on a loaded
	// machine.)
	am.Kill()
	am.Start()
	am.WaitAlert("7", true)
	if _, ok := am.Alerts()["8"]; ok {
		t.Error("the resolved alert fires again after the restart")
	}
}

// TestRefusedAlerts: a 4xx is counted and not retried; what follows still
// gets through.
func TestRefusedAlerts(t *testing.T) {
	am := testkit.NewAlertmanager(t)
	am.Start()
	n := notifier(t, amnotify.Options{Alertmanagers: []string{am.URL()}, ResendDelay: time.Hour}, nil)
	bad := labels("6")
	bad["not-a-label-name"] = "x"
	n.Fire("6", bad, nil, time.Now())
	testkit.Eventually(t, 10*time.Second, "the refusal counted", func() bool {
		return counter(t, n, "steam_exporter_notifications_errors_total", "") == 1
	})
	n.Fire("7", labels("7"), nil, time.Now())
	am.WaitAlert("7", true)
	// Counted once Alertmanager's answer is read, which may be after it shows the alert.
	testkit.Eventually(t, 5*time.Second, "the second notification counted", func() bool {
		return counter(t, n, "steam_exporter_notifications_total", "") >= 2
	})
	if got := counter(t, n, "steam_exporter_notifications_total", ""); got != 2 {
		t.Errorf("notifications_total = %v, want 2: the refused alert was retried", got)
	}
}

// TestQueueBound: alerts for an unreachable Alertmanager beyond the
// queue's capacity are dropped and counted; the queue never grows.
func TestQueueBound(t *testing.T) {
	down := testkit.NewAlertmanager(t)
	n := notifier(t, amnotify.Options{Alertmanagers: []string{down.URL()}, QueueCapacity: 3, ResendDelay: time.Hour}, nil)
	for i := range 10 {
		id := fmt.Sprint(i)
		n.Fire(id, labels(id), nil, time.Now())
	}
	testkit.Eventually(t, 5*time.Second, "the drops counted", func() bool {
		return counter(t, n, "steam_exporter_notifications_dropped_total", "") == 7
	})
	if got := counter(t, n, "steam_exporter_notifications_queue_length", ""); got > 3 {
		t.Errorf("queue_length = %v, above the capacity of 3", got)
	}
}

func TestBadURL(t *testing.T) {
	for _, raw := range []string{"", "127.0.0.1:9093", "ftp://host", "http://"} {
		if _, err := amnotify.New(amnotify.Options{Alertmanagers: []string{raw}}, promslog.NewNopLogger()); err == nil {
			t.Errorf("New(%q) accepted it", raw)
		}
	}
}
