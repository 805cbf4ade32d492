package main

import (
	"fmt"
	"maps"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// startWatchingExporter runs the exporter with the exit watch sending to
// the Alertmanagers, and waits until it watches n javas.
func startWatchingExporter(t *testing.T, dir string, n int, args ...string) *subprocess {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startExporter(t, append([]string{"--steam.home=" + dir, "--web.listen-address=" + addr}, args...)...)
	testkit.Eventually(t, 10*time.Second, "the exporter to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	want := fmt.Sprintf("steam_exporter_exit_watch_processes %d\n", n)
	testkit.Eventually(t, 10*time.Second, want, func() bool {
		_, body := get(t, "http://"+addr+"/metrics")
		return strings.Contains(body, want)
	})
	return e
}

// TestExporterSendsExits: a killed java reaches both members of an HA pair
// as SteamDeploymentExited, labelled as SteamDeploymentDown plus the
// configured labels; it is resolved once a verified java is recorded, and a
// death while the exporter was down is sent once it is back.
func TestExporterSendsExits(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	a, b := testkit.AlertmanagerPair(t)
	args := []string{"--alertmanager.url=" + a.URL(), "--alertmanager.url=" + b.URL(),
		"--alertmanager.label=instance=steam1:9732", "--alertmanager.label=steam_host=steam1"}
	e := startWatchingExporter(t, h.Home.Dir, 1, args...)
	id := fmt.Sprint(d.ID)

	killed := time.Now()
	testkit.Kill(t, p)
	a.WaitAlert(id, true)
	t.Logf("SIGKILL → alert in Alertmanager: %v", time.Since(killed))
	b.WaitAlert(id, true)
	want := map[string]string{"alertname": AlertExited, "severity": "critical", "deployment_id": id,
		"deployment": "churn", "instance": "steam1:9732", "steam_host": "steam1"}
	for _, am := range []*testkit.Alertmanager{a, b} {
		if got := am.Alerts()[id]; !maps.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", am.URL(), got, want)
		}
	}

	p = h.Start(h.Deployment(d.ID))
	a.WaitAlert(id, false)
	b.WaitAlert(id, false)

	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := e.exitCode(t); code != 0 {
		t.Fatalf("exit code after SIGTERM %d, want 0; log:\n%s", code, e.stderr.String())
	}
	testkit.Kill(t, p)
	startWatchingExporter(t, h.Home.Dir, 0, args...)
	a.WaitAlert(id, true)
	b.WaitAlert(id, true)
}

func TestExporterWatchFlagsRefused(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	for _, tc := range []struct{ name, flag, want string }{
		{"bad URL", "--alertmanager.url=127.0.0.1:9093", "alertmanager URL"},
		{"bad label name", "--alertmanager.label=in-stance=x", "not a label name"},
		{"alert's own label", "--alertmanager.label=severity=info", "set by the alert itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0", tc.flag}
			if !strings.HasPrefix(tc.flag, "--alertmanager.url") {
				args = append(args, "--alertmanager.url=http://127.0.0.1:9093")
			}
			e := startExporter(t, args...)
			if code := e.exitCode(t); code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if !strings.Contains(e.stderr.String(), tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, e.stderr.String())
			}
		})
	}
}
