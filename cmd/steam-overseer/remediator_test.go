package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/fakescorer"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

// remediatorProcess is a running `steam-overseer remediator`.
type remediatorProcess struct {
	cmd    *exec.Cmd
	base   string
	stderr *safeBuffer
	done   chan struct{}
}

// startRemediator runs the remediator on h with the fake java, on a free
// loopback port; the process is killed when the test ends, and so are the
// deployments it started, which outlive it by design.
func startRemediator(t *testing.T, h *steamtest.Home, args ...string) *remediatorProcess {
	t.Helper()
	port, err := steamfixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r := &remediatorProcess{base: "http://" + addr, stderr: &safeBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(steamtest.Binary(t), append([]string{"remediator", "--steam.home=" + h.Home.Dir,
		"--web.listen-address=" + addr, "--java.path=" + h.Java, "--log.level=debug"}, args...)...)
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	steamtest.Eventually(t, 10*time.Second, "the remediator to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

// notify posts a firing SteamDeploymentDown alert for the deployment.
func (r *remediatorProcess) notify(t *testing.T, id int64) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"SteamDeploymentDown\"}","status":"firing",
		"receiver":"steam-remediator","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"",
		"truncatedAlerts":0,"alerts":[{"status":"firing","labels":{"alertname":"SteamDeploymentDown",
		"deployment_id":"%d"},"annotations":{},"startsAt":"2025-03-01T12:00:00Z","endsAt":"0001-01-01T00:00:00Z",
		"generatorURL":"","fingerprint":"f%d"}]}`, id, id)
	resp, err := http.Post(r.base+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func (r *remediatorProcess) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("remediator still running; log:\n%s", r.stderr.String())
		return -1
	}
}

// startsLogged counts the starts the remediator logged for a deployment.
func startsLogged(t *testing.T, h *steamtest.Home, id int64) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Home.LogDir(), fmt.Sprintf("deployment-%d.log", id)))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("steam-overseer remediator: starting deployment "))
}

func TestRemediatorServes(t *testing.T) {
	h := steamtest.NewHome(t)
	d, p := h.Run(steamfixture.Spec{Name: "churn", LogicalName: "churn"})
	steamtest.Kill(t, p)
	r := startRemediator(t, h)

	code, body := r.notify(t, d.ID)
	if code != http.StatusOK || !strings.Contains(body, `"queued":1`) {
		t.Fatalf("POST /webhook: %d %s", code, body)
	}
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	var restarted steam.Deployment
	steamtest.Eventually(t, 10*time.Second, "the deployment to be restarted", func() bool {
		restarted = h.Deployment(d.ID)
		identity, _ := restarted.Identity()
		return restarted.PID != int64(p.Pid) && in.Inspect(int(restarted.PID), identity).Status == procid.StatusRunning
	})
	if err := steamfixture.WaitReady(context.Background(), int(d.Port), 5*time.Second); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		method, path string
		wantCode     int
		wantBody     []string
	}{
		{"GET", "/metrics", http.StatusOK, []string{
			`steam_remediator_actions_total{action="restart",result="success"} 1`,
			`steam_remediator_webhook_requests_total{code="200"} 1`,
			`steam_remediator_alerts_total{outcome="queued"} 1`,
			"steam_remediator_queue_length 0",
			fmt.Sprintf(`steam_remediator_deployment_gave_up{deployment_id="%d"} 0`, d.ID),
			"steam_remediator_restart_duration_seconds_count 1",
			"steam_remediator_build_info{",
			"process_resident_memory_bytes ",
		}},
		{"GET", "/-/healthy", http.StatusOK, []string{"Healthy"}},
		{"GET", "/-/ready", http.StatusOK, []string{"Ready"}},
		{"GET", "/", http.StatusOK, []string{`href="/metrics"`}},
		{"GET", "/webhook", http.StatusMethodNotAllowed, nil},
		{"POST", "/webhook", http.StatusBadRequest, nil}, // empty body
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, r.base+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			for _, want := range tc.wantBody {
				if !strings.Contains(b.String(), want) {
					t.Errorf("body lacks %q", want)
				}
			}
		})
	}

	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.exitCode(t); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0; log:\n%s", code, r.stderr.String())
	}
	// The deployment outlives the remediator that started it.
	if err := steamfixture.WaitReady(context.Background(), int(d.Port), time.Second); err != nil {
		t.Errorf("restarted deployment died with the remediator: %v", err)
	}
	log := r.stderr.String()
	for _, want := range []string{`msg="Starting steam-overseer remediator"`, `msg="Remediation done"`, "action=restart", `msg="Remediator stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// The reset command journals.
	out, err := exec.Command(steamtest.Binary(t), "remediator", "reset", fmt.Sprint(d.ID), "--steam.home="+h.Home.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("remediator reset: %v\n%s", err, out)
	}
	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	es, err := st.Journal(context.Background(), d.ID, 10)
	if err != nil || len(es) == 0 || es[0].Action != state.ActionReset {
		t.Errorf("journal after reset: %+v, %v", es, err)
	}
}

// TestTwoRemediatorsOneHome: two remediator processes on one Steam home,
// both notified at once, many times, about a dead deployment: one start.
func TestTwoRemediatorsOneHome(t *testing.T) {
	h := steamtest.NewHome(t)
	d, p := h.Run(steamfixture.Spec{Name: "churn", LogicalName: "churn",
		Behaviour: fakescorer.Behaviour{ReadyAfter: 300 * time.Millisecond}})
	steamtest.Kill(t, p)
	rs := []*remediatorProcess{startRemediator(t, h), startRemediator(t, h)}
	var wg sync.WaitGroup
	for range 10 {
		for _, r := range rs {
			wg.Go(func() {
				if code, body := r.notify(t, d.ID); code != http.StatusOK {
					t.Errorf("POST /webhook: %d %s", code, body)
				}
			})
		}
	}
	wg.Wait()
	steamtest.Eventually(t, 10*time.Second, "the deployment to be restarted", func() bool {
		return h.Deployment(d.ID).PID != int64(p.Pid)
	})
	// Let both drain their queues before counting.
	for _, r := range rs {
		steamtest.Eventually(t, 10*time.Second, "the queue to drain", func() bool {
			_, body := get(t, r.base+"/metrics")
			return strings.Contains(body, "steam_remediator_queue_length 0") &&
				!strings.Contains(body, `steam_remediator_actions_total{action="noop",result="success"} 0`)
		})
	}
	if n := startsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}

func TestRemediatorFailsToStart(t *testing.T) {
	h := steamtest.NewHome(t)
	empty := filepath.Join(t.TempDir(), "empty-token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantLog  string
	}{
		{"no Steam home", []string{"remediator", "--web.listen-address=127.0.0.1:0"}, 1, "no Steam home"},
		{"token file missing", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--webhook.bearer-token-file=" + filepath.Join(t.TempDir(), "nope")}, 1, "reading bearer token"},
		{"token file empty", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--webhook.bearer-token-file=" + empty}, 1, "is empty"},
		{"java option without a dash", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--java.opts=-Xmx1g Xss1m"}, 1, `java option \"Xss1m\"`},
		{"match without a name", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--webhook.match==x"}, 1, "empty label name"},
		{"reset of no deployment", []string{"remediator", "reset", "0", "--steam.home=" + h.Home.Dir}, 2, "Invalid deployment id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(steamtest.Binary(t), tc.args...)
			cmd.Env = append(os.Environ(), "STEAM_HOME=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantLog) {
				t.Errorf("exit code %d, want %d; log does not say %q?\n%s", code, tc.wantCode, tc.wantLog, stderr.String())
			}
		})
	}
}
