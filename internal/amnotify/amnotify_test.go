package amnotify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/amnotify"
	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

// alertmanager is a real Alertmanager from Debian's package.
type alertmanager struct {
	t            *testing.T
	dir          string
	port, gossip int
	peers        []int
	cmd          *exec.Cmd
	log          bytes.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := steamfixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newAlertmanager reserves ports for an Alertmanager; start runs it.
func newAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	dir := t.TempDir()
	config := "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return &alertmanager{t: t, dir: dir, port: freePort(t), gossip: freePort(t)}
}

func (am *alertmanager) url() string { return fmt.Sprintf("http://127.0.0.1:%d", am.port) }

func (am *alertmanager) start() {
	t := am.t
	t.Helper()
	bin := steamtest.RequireTool(t, "prometheus-alertmanager")
	args := []string{"--config.file=" + filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path=" + filepath.Join(am.dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", am.port),
		fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", am.gossip)}
	for _, p := range am.peers {
		args = append(args, fmt.Sprintf("--cluster.peer=127.0.0.1:%d", p))
	}
	am.cmd = exec.Command(bin, args...)
	am.log.Reset()
	am.cmd.Stdout, am.cmd.Stderr = &am.log, &am.log
	if err := am.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steamtest.Reap(t, am.cmd)
	steamtest.Eventually(t, 20*time.Second, "Alertmanager to be ready", func() bool {
		resp, err := http.Get(am.url() + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// kill SIGKILLs the Alertmanager: it loses every alert it held.
func (am *alertmanager) kill() {
	steamtest.Kill(am.t, am.cmd.Process)
}

// alerts returns the labels of the alerts Alertmanager holds unresolved,
// by deployment_id.
func (am *alertmanager) alerts() map[string]map[string]string {
	t := am.t
	t.Helper()
	resp, err := http.Get(am.url() + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("listing alerts: %v\n%s", err, am.log.String())
	}
	defer resp.Body.Close()
	var got []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, a := range got {
		out[a.Labels["deployment_id"]] = a.Labels
	}
	return out
}

func (am *alertmanager) waitAlert(id string, present bool) {
	am.t.Helper()
	steamtest.Eventually(am.t, 25*time.Second, fmt.Sprintf("alert %s present=%v in %s", id, present, am.url()), func() bool {
		_, ok := am.alerts()[id]
		return ok == present
	})
}

// syncBuffer is a log that the notifier writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

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
	reg := prometheus.NewRegistry()
	reg.MustRegister(n)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := am == ""
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == "alertmanager" && strings.HasPrefix(l.GetValue(), am))
			}
			if match {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestHAPair: both members of a clustered pair get the alert and its
// resolution.
func TestHAPair(t *testing.T) {
	a, b := newAlertmanager(t), newAlertmanager(t)
	a.peers, b.peers = []int{b.gossip}, []int{a.gossip}
	a.start()
	b.start()
	n := notifier(t, amnotify.Options{Alertmanagers: []string{a.url(), b.url() + "/"}}, nil)
	n.Fire("7", labels("7"), map[string]string{"summary": "gone"}, time.Now())
	for _, am := range []*alertmanager{a, b} {
		am.waitAlert("7", true)
		if got, want := am.alerts()["7"], labels("7"); !maps.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", am.url(), got, want)
		}
	}
	n.Resolve("7")
	a.waitAlert("7", false)
	b.waitAlert("7", false)
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
	up, down := newAlertmanager(t), newAlertmanager(t)
	up.start()
	var log syncBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	n := notifier(t, amnotify.Options{Alertmanagers: []string{up.url(), down.url()}, ResendDelay: time.Hour}, logger)
	n.Fire("7", labels("7"), nil, time.Now())
	up.waitAlert("7", true)
	steamtest.Eventually(t, 10*time.Second, "several failed sends", func() bool {
		return counter(t, n, "steam_exporter_notifications_errors_total", down.url()) >= 3
	})
	if got := counter(t, n, "steam_exporter_notifications_errors_total", up.url()); got != 0 {
		t.Errorf("errors_total of the live member = %v, want 0", got)
	}
	if got := log.count("Sending alerts to Alertmanager failed"); got != 1 {
		t.Errorf("logged the failure %d times, want once\n%s", got, log.b.String())
	}
	down.start()
	down.waitAlert("7", true)
	steamtest.Eventually(t, 5*time.Second, "the recovery logged", func() bool {
		return log.count("Sending alerts to Alertmanager again") == 1
	})
}

// TestAlertmanagerRestart: a restarted Alertmanager has lost its alerts;
// the resend brings back the ones still firing, not the resolved-and-gone.
func TestAlertmanagerRestart(t *testing.T) {
	am := newAlertmanager(t)
	am.start()
	n := notifier(t, amnotify.Options{Alertmanagers: []string{am.url()}, ResendDelay: time.Second}, nil)
	n.Fire("7", labels("7"), nil, time.Now())
	n.Fire("8", labels("8"), nil, time.Now())
	am.waitAlert("7", true)
	am.waitAlert("8", true)
	n.Resolve("8")
	am.waitAlert("8", false)
	am.kill()
	am.start()
	if _, ok := am.alerts()["7"]; ok {
		t.Fatal("the restarted Alertmanager kept its alerts: this test proves nothing")
	}
	am.waitAlert("7", true)
	if _, ok := am.alerts()["8"]; ok {
		t.Error("the resolved alert fires again after the restart")
	}
}

// TestRefusedAlerts: a 4xx is counted and not retried; what follows still
// gets through.
func TestRefusedAlerts(t *testing.T) {
	am := newAlertmanager(t)
	am.start()
	n := notifier(t, amnotify.Options{Alertmanagers: []string{am.url()}, ResendDelay: time.Hour}, nil)
	bad := labels("6")
	bad["not-a-label-name"] = "x"
	n.Fire("6", bad, nil, time.Now())
	steamtest.Eventually(t, 10*time.Second, "the refusal counted", func() bool {
		return counter(t, n, "steam_exporter_notifications_errors_total", "") == 1
	})
	n.Fire("7", labels("7"), nil, time.Now())
	am.waitAlert("7", true)
	if got := counter(t, n, "steam_exporter_notifications_total", ""); got != 2 {
		t.Errorf("notifications_total = %v, want 2: the refused alert was retried", got)
	}
}

// TestQueueBound: alerts for an unreachable Alertmanager beyond the
// queue's capacity are dropped and counted; the queue never grows.
func TestQueueBound(t *testing.T) {
	down := newAlertmanager(t)
	n := notifier(t, amnotify.Options{Alertmanagers: []string{down.url()}, QueueCapacity: 3, ResendDelay: time.Hour}, nil)
	for i := range 10 {
		id := fmt.Sprint(i)
		n.Fire(id, labels(id), nil, time.Now())
	}
	steamtest.Eventually(t, 5*time.Second, "the drops counted", func() bool {
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
