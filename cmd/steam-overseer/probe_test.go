package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// startProbingExporter runs the exporter on a free port with args and
// returns its /metrics URL once it listens.
func startProbingExporter(t *testing.T, h *testkit.Home, args ...string) string {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startExporter(t, append([]string{"--steam.home=" + h.Home.Dir, "--web.listen-address=" + addr}, args...)...)
	testkit.Eventually(t, 10*time.Second, "the exporter to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "http://" + addr + "/metrics"
}

func TestExporterProbesDeployments(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, proc := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	dead, deadProc := h.Run(testkit.Spec{Name: "gone", LogicalName: "gone"})
	testkit.Kill(t, deadProc)
	url := startProbingExporter(t, h, "--probe.interval=200ms", "--probe.timeout=300ms", "--probe.start-grace=45s")
	series := func(name string, id int64) string {
		return fmt.Sprintf(`%s{deployment="%s",deployment_id="%d"}`, name, map[int64]string{d.ID: "churn", dead.ID: "gone"}[id], id)
	}
	scrapeHas := func(want ...string) func() bool {
		return func() bool {
			code, body := get(t, url)
			for _, w := range want {
				if code != http.StatusOK || !strings.Contains(body, w+"\n") {
					return false
				}
			}
			return true
		}
	}

	testkit.Eventually(t, 10*time.Second, "the running deployment to answer its probe", scrapeHas(
		series("steam_deployment_probe_success", d.ID)+" 1",
		series("steam_deployment_probe_failures", d.ID)+" 0",
		"steam_exporter_probe_start_grace_seconds 45"))
	_, body := get(t, url)
	for _, name := range []string{"steam_deployment_probe_duration_seconds", "steam_deployment_probe_timestamp_seconds"} {
		if !strings.Contains(body, series(name, d.ID)+" ") {
			t.Errorf("/metrics lacks %s of the running deployment", name)
		}
	}
	if strings.Contains(body, series("steam_deployment_probe_success", dead.ID)) {
		t.Errorf("a dead deployment has probe series:\n%s", body)
	}

	testkit.Freeze(t, proc)
	testkit.Eventually(t, 10*time.Second, "the stopped deployment to fail its probes", scrapeHas(
		series("steam_deployment_probe_success", d.ID)+" 0",
		series("steam_deployment_probe_failures", d.ID)+" 2",
		series("steam_deployment_up", d.ID)+" 1"))
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the continued deployment to answer again", scrapeHas(
		series("steam_deployment_probe_success", d.ID)+" 1",
		series("steam_deployment_probe_failures", d.ID)+" 0"))
}

func TestExporterProbesDisabled(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	url := startProbingExporter(t, h, "--no-probe.enabled", "--probe.interval=100ms")
	up := fmt.Sprintf(`steam_deployment_up{deployment="churn",deployment_id="%d"} 1`, d.ID)
	// Rounds would have run several times by the second scrape.
	for range 2 {
		code, body := get(t, url)
		if code != http.StatusOK || !strings.Contains(body, up) {
			t.Fatalf("GET /metrics: %d, without %q:\n%s", code, up, body)
		}
		if strings.Contains(body, "probe_") {
			t.Errorf("probe series with --no-probe.enabled:\n%s", body)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestStatusShowsUnresponsive(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	_, stopped := h.Run(testkit.Spec{Name: "fraud", LogicalName: "fraud"})
	testkit.Freeze(t, stopped)
	for _, tc := range []struct {
		output string
		want   []string
	}{
		{"table", []string{" running ", " unresponsive ", "probe: GET /ping: no answer within the timeout (2s)\n"}},
		{"json", []string{`"status": "running"`, `"status": "unresponsive"`, `"success": false`,
			`"error": "GET /ping: no answer within the timeout (2s)"`}},
	} {
		cmd := exec.Command(testkit.Binary(t), "status", "--steam.home="+h.Home.Dir, "--probe.timeout=2s", // the live one answers on a loaded machine too
			"--output="+tc.output)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("status --output=%s: %v\n%s", tc.output, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("status --output=%s lacks %q:\n%s", tc.output, w, out)
			}
		}
	}
}

func TestProbeFlagsRefused(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	for _, args := range [][]string{
		{"exporter", "--probe.timeout=0s"},
		{"exporter", "--probe.interval=0s"},
		{"exporter", "--probe.start-grace=-1s"},
		{"status", "--probe.timeout=0s"},
	} {
		args = append(args, "--steam.home="+h.Home.Dir, "--web.listen-address=127.0.0.1:0")
		if args[0] == "status" {
			args = args[:len(args)-1]
		}
		var stderr strings.Builder
		cmd := exec.Command(testkit.Binary(t), args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), args[1][:strings.Index(args[1], "=")]) {
			t.Errorf("%s: %v, exit code %d, want 2 and a sentence naming the flag:\n%s", strings.Join(args, " "), err, code, stderr.String())
		}
	}
}
