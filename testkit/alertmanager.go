package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/promstack"
)

// Alertmanager is one of Debian's Alertmanagers, alone or in a clustered
// HA pair, with its ports reserved; Start runs it, and it is killed when
// the test ends.
type Alertmanager struct {
	Port, Gossip int
	// Peers are the gossip ports of the other members of its cluster.
	Peers []int

	t      testing.TB
	dir    string
	config []byte
	cmd    *exec.Cmd
	log    Buffer
}

// NewAlertmanager reserves ports for an Alertmanager that routes every
// alert nowhere: tests read its API, not notifications.
func NewAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	return NewAlertmanagerWithConfig(t, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"))
}

// NewAlertmanagerWithConfig reserves ports for an Alertmanager running
// config.
func NewAlertmanagerWithConfig(t testing.TB, config []byte) *Alertmanager {
	t.Helper()
	am := &Alertmanager{t: t, dir: t.TempDir(), config: config}
	for _, p := range []*int{&am.Port, &am.Gossip} {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		*p = port
	}
	return am
}

// AlertmanagerPair returns two Alertmanagers that gossip with each other,
// started.
func AlertmanagerPair(t testing.TB) (*Alertmanager, *Alertmanager) {
	a, b := NewAlertmanager(t), NewAlertmanager(t)
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
	in := promstack.Instance{Dir: am.dir, Addr: fmt.Sprintf("127.0.0.1:%d", am.Port), Config: am.config,
		Gossip: fmt.Sprintf("127.0.0.1:%d", am.Gossip)}
	for _, p := range am.Peers {
		in.Peers = append(in.Peers, fmt.Sprintf("127.0.0.1:%d", p))
	}
	args, err := promstack.Alertmanager(RequireTool(t, "prometheus-alertmanager"), in)
	if err != nil {
		t.Fatal(err)
	}
	am.cmd = exec.Command(args[0], args[1:]...)
	am.cmd.Stdout, am.cmd.Stderr = &am.log, &am.log
	if err := am.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	Reap(t, am.cmd)
	if err := promstack.WaitReady(context.Background(), am.URL()+"/-/ready", 20*time.Second, nil); err != nil {
		t.Fatalf("Alertmanager: %v\n%s", err, am.log.String())
	}
}

// Log is what the Alertmanager wrote.
func (am *Alertmanager) Log() string { return am.log.String() }

// Kill SIGKILLs the Alertmanager: it loses every alert it held.
func (am *Alertmanager) Kill() { Kill(am.t, am.cmd.Process) }

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
	Eventually(am.t, 25*time.Second, fmt.Sprintf("alert %s present=%v in %s", id, present, am.URL()), func() bool {
		_, ok := am.Alerts()[id]
		return ok == present
	})
}
