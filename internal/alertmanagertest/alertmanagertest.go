// Package alertmanagertest runs Debian's real Alertmanager for tests, alone
// or as a clustered HA pair, and reads back the alerts it holds.
package alertmanagertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/testkit"
)

// Alertmanager is one Alertmanager with its ports reserved; Start runs it,
// and it is killed when the test ends.
type Alertmanager struct {
	Port, Gossip int
	// Peers are the gossip ports of the other members of its cluster.
	Peers []int

	t   testing.TB
	dir string
	cmd *exec.Cmd
	log testkit.Buffer
}

// New reserves ports and writes a configuration that routes every alert
// nowhere: tests read Alertmanager's API, not notifications.
func New(t testing.TB) *Alertmanager {
	t.Helper()
	return NewWithConfig(t, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"))
}

// NewWithConfig reserves ports for an Alertmanager running config.
func NewWithConfig(t testing.TB, config []byte) *Alertmanager {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), config, 0o600); err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{t: t, dir: dir}
	for _, p := range []*int{&am.Port, &am.Gossip} {
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		*p = port
	}
	return am
}

// Pair returns two Alertmanagers that gossip with each other, started.
func Pair(t testing.TB) (*Alertmanager, *Alertmanager) {
	a, b := New(t), New(t)
	a.Peers, b.Peers = []int{b.Gossip}, []int{a.Gossip}
	a.Start()
	b.Start()
	return a, b
}

// URL is the Alertmanager's base URL.
func (am *Alertmanager) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", am.Port) }

// Start runs the Alertmanager and waits until it is ready.
func (am *Alertmanager) Start() {
	t := am.t
	t.Helper()
	bin := testkit.RequireTool(t, "prometheus-alertmanager")
	args := []string{"--config.file=" + filepath.Join(am.dir, "alertmanager.yml"),
		"--storage.path=" + filepath.Join(am.dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", am.Port),
		fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", am.Gossip)}
	for _, p := range am.Peers {
		args = append(args, fmt.Sprintf("--cluster.peer=127.0.0.1:%d", p))
	}
	am.cmd = exec.Command(bin, args...)
	am.cmd.Stdout, am.cmd.Stderr = &am.log, &am.log
	if err := am.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Reap(t, am.cmd)
	testkit.Eventually(t, 20*time.Second, "Alertmanager to be ready", func() bool {
		resp, err := http.Get(am.URL() + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Log is what the Alertmanager wrote.
func (am *Alertmanager) Log() string { return am.log.String() }

// Kill SIGKILLs the Alertmanager: it loses every alert it held.
func (am *Alertmanager) Kill() { testkit.Kill(am.t, am.cmd.Process) }

// Alerts returns the labels of the unresolved alerts it holds, by their
// deployment_id label.
func (am *Alertmanager) Alerts() map[string]map[string]string {
	t := am.t
	t.Helper()
	resp, err := http.Get(am.URL() + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("listing alerts: %v\n%s", err, am.log.String())
	}
	defer resp.Body.Close()
	var got []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("listing alerts: %v", err)
	}
	out := map[string]map[string]string{}
	for _, a := range got {
		out[a.Labels["deployment_id"]] = a.Labels
	}
	return out
}

// WaitAlert waits until the alert of deployment id is held (or not).
func (am *Alertmanager) WaitAlert(id string, present bool) {
	am.t.Helper()
	testkit.Eventually(am.t, 25*time.Second, fmt.Sprintf("alert %s present=%v in %s", id, present, am.URL()), func() bool {
		_, ok := am.Alerts()[id]
		return ok == present
	})
}
