package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// remediatorProcess is a running `steam-overseer remediator`.
type remediatorProcess struct {
	*subprocess
	base string
}

// startRemediator runs the remediator on h with the fake java, on a free
// loopback port; the process is killed when the test ends, and so are the
// deployments it started, which outlive it by design.
func startRemediator(t *testing.T, h *testkit.Home, args ...string) *remediatorProcess {
	t.Helper()
	return startRemediatorEnv(t, h, nil, args...)
}

// startRemediatorEnv is startRemediator with env for the remediator and the
// javas it starts (nil: the test's own).
func startRemediatorEnv(t *testing.T, h *testkit.Home, env []string, args ...string) *remediatorProcess {
	t.Helper()
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	r := &remediatorProcess{base: "http://" + addr, subprocess: startSubprocess(t, env, append([]string{"remediator",
		"--steam.home=" + h.Home.Dir, "--web.listen-address=" + addr, "--java.path=" + h.Java, "--log.level=debug"},
		args...)...)}
	testkit.Eventually(t, 10*time.Second, "the remediator to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

// notification is a webhook payload with a firing SteamDeploymentDown alert
// for the deployment; pad lengthens it by an annotation of that many bytes.
func notification(id int64, pad int) string {
	return fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"SteamDeploymentDown\"}","status":"firing",
		"receiver":"steam-remediator","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"",
		"truncatedAlerts":0,"alerts":[{"status":"firing","labels":{"alertname":"SteamDeploymentDown",
		"deployment_id":"%d"},"annotations":{"description":"%s"},"startsAt":"2025-03-01T12:00:00Z","endsAt":"0001-01-01T00:00:00Z",
		"generatorURL":"","fingerprint":"f%d"}]}`, id, strings.Repeat("x", pad), id)
}

// post sends body to the webhook. It does not fail the test, so that
// goroutines may call it.
func (r *remediatorProcess) post(method string, body io.Reader, authorization string) (int, string, error) {
	req, err := http.NewRequest(method, r.base+"/webhook", body)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// notify posts a firing SteamDeploymentDown alert for the deployment.
func (r *remediatorProcess) notify(t *testing.T, id int64) (int, string) {
	t.Helper()
	code, body, err := r.post(http.MethodPost, strings.NewReader(notification(id, 0)), "")
	if err != nil {
		t.Fatal(err)
	}
	return code, body
}

// notifyConcurrently posts n notifications for the deployment at once and
// fails the test unless every one is answered 200.
func (r *remediatorProcess) notifyConcurrently(t *testing.T, id int64, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			code, body, err := r.post(http.MethodPost, strings.NewReader(notification(id, 0)), "")
			if err != nil || code != http.StatusOK {
				t.Errorf("POST /webhook for deployment %d: %d %s %v", id, code, body, err)
			}
		})
	}
	wg.Wait()
}

// metric returns the value of the sample named exactly series (name and
// labels) on the remediator's /metrics, or -1 if it has none.
func (r *remediatorProcess) metric(t *testing.T, series string) float64 {
	t.Helper()
	_, body := get(t, r.base+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// drain waits until nothing is queued, then stops the remediator with
// SIGTERM and waits for it to exit: remediations in progress finish first,
// and once it has exited nothing more can start.
func (r *remediatorProcess) drain(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "the queue to drain", func() bool {
		return r.metric(t, "steam_remediator_queue_length") == 0
	})
	// Connections the client dialled but never used would hold up the
	// server's graceful shutdown for seconds.
	http.DefaultClient.CloseIdleConnections()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.exitCode(t); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0; log:\n%s", code, r.stderr.String())
	}
}

// journaled counts the journal's entries of the action for a deployment.
func journaled(t *testing.T, h *testkit.Home, id int64, action string) int {
	t.Helper()
	return journaledResult(t, h, id, action, "")
}

// journaledResult counts the journal's entries of the action with the
// result ("" for any).
func journaledResult(t *testing.T, h *testkit.Home, id int64, action, result string) int {
	t.Helper()
	return journaledWhere(t, h, id, func(e state.Entry) bool {
		return e.Action == action && (result == "" || e.Result == result)
	})
}

// journaledWhere counts the journal's entries of a deployment that match.
func journaledWhere(t *testing.T, h *testkit.Home, id int64, match func(state.Entry) bool) int {
	t.Helper()
	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	es, err := st.Journal(context.Background(), id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if match(e) {
			n++
		}
	}
	return n
}

func TestRemediatorServes(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	testkit.Kill(t, p)
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
	testkit.Eventually(t, 10*time.Second, "the deployment to be restarted", func() bool {
		restarted = h.Deployment(d.ID)
		identity, _ := restarted.Identity()
		return restarted.PID != int64(p.Pid) && in.Inspect(int(restarted.PID), identity).Status == procid.StatusRunning
	})
	if err := testkit.WaitReady(context.Background(), int(d.Port), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// The PID lands before the restart is counted and journaled; the
	// metrics are counted before the journal entry is written.
	testkit.Eventually(t, 10*time.Second, "the restart to be journaled", func() bool {
		return journaled(t, h, d.ID, state.ActionRestart) == 1
	})

	for _, tc := range []struct {
		method, path string
		wantCode     int
		wantBody     []string
	}{
		{"GET", "/metrics", http.StatusOK, []string{
			// A restart counts as a success once it outlives its watch window.
			`steam_remediator_actions_total{action="restart",result="success"} 0`,
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
		{"POST", "/webhook", http.StatusUnsupportedMediaType, nil}, // no Content-Type
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
	if err := testkit.WaitReady(context.Background(), int(d.Port), time.Second); err != nil {
		t.Errorf("restarted deployment died with the remediator: %v", err)
	}
	log := r.stderr.String()
	for _, want := range []string{`msg="Starting steam-overseer remediator"`, `msg="Remediation done"`, "action=restart", `msg="Remediator stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// The reset command journals.
	out, err := exec.Command(testkit.Binary(t), "remediator", "reset", fmt.Sprint(d.ID), "--steam.home="+h.Home.Dir).CombinedOutput()
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
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn",
		Behaviour: testkit.Behaviour{ReadyAfter: 300 * time.Millisecond}})
	testkit.Kill(t, p)
	rs := []*remediatorProcess{startRemediator(t, h), startRemediator(t, h)}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() { r.notifyConcurrently(t, d.ID, 10) })
	}
	wg.Wait()
	testkit.Eventually(t, 20*time.Second, "the deployment to be restarted", func() bool {
		return running(t, h, d.ID) != 0
	})
	for _, r := range rs {
		r.drain(t)
	}
	assertOneStart(t, h, d)
}

// assertOneStart checks that the deployment was started exactly once: one
// start in its log, one successful restart journaled, one java of it
// running, the one in its row.
func assertOneStart(t *testing.T, h *testkit.Home, d steam.Deployment) {
	t.Helper()
	if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
		t.Errorf("%d starts logged, want 1", n)
	}
	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	es, err := st.Journal(context.Background(), d.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int64]bool{}
	for _, e := range es {
		if e.Action == state.ActionRestart {
			pids[e.NewPID] = true
		}
	}
	identity, _ := d.Identity()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	found, err := in.Find(identity)
	if err != nil {
		t.Fatal(err)
	}
	row := running(t, h, d.ID)
	if len(pids) != 1 || !pids[int64(row)] || len(found) != 1 || found[0].PID != row {
		t.Errorf("restarts journaled with PIDs %v, javas running %+v, row PID %d; want one, the same", pids, found, row)
	}
}

// TestRemediatorConcurrentWebhooks: 50 concurrent webhooks for a dead
// deployment start it once; 50 more, once it runs, and 50 for a deployment
// that ran all along start nothing.
func TestRemediatorConcurrentWebhooks(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	// Slow enough to be ready that notifications pile up while it starts.
	dead, p := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead",
		Behaviour: testkit.Behaviour{ReadyAfter: 300 * time.Millisecond}})
	testkit.Kill(t, p)
	live, lp := h.Run(testkit.Spec{Name: "live", LogicalName: "live"})
	r := startRemediator(t, h)

	r.notifyConcurrently(t, dead.ID, 50)
	testkit.Eventually(t, 20*time.Second, "the dead deployment to be restarted", func() bool {
		return running(t, h, dead.ID) != 0
	})
	var wg sync.WaitGroup
	for _, id := range []int64{dead.ID, live.ID} {
		wg.Go(func() { r.notifyConcurrently(t, id, 50) })
	}
	wg.Wait()
	if got := r.metric(t, `steam_remediator_alerts_total{outcome="queued"}`); got != 150 {
		t.Errorf("%v alerts queued, want 150", got)
	}
	r.drain(t)

	assertOneStart(t, h, dead)
	if n := testkit.StartsLogged(t, h, live.ID); n != 0 {
		t.Errorf("live deployment: %d starts, want 0", n)
	}
	if pid := running(t, h, live.ID); pid != lp.Pid {
		t.Errorf("live deployment: row PID %d, want %d untouched", pid, lp.Pid)
	}
}

// TestRemediatorRejectsBadRequests: requests with the wrong method, without
// the bearer token, malformed or too large are refused with their codes,
// and nothing is queued, started or journaled, though each names a dead
// deployment that an accepted notification would start.
func TestRemediatorRejectsBadRequests(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	testkit.Kill(t, p)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRemediator(t, h, "--webhook.bearer-token-file="+tokenFile, "--webhook.max-body=2KiB")

	valid := notification(d.ID, 0)
	big := notification(d.ID, 4<<10)
	for _, tc := range []struct {
		name          string
		method        string
		body          io.Reader
		authorization string
		wantCode      int
	}{
		{"GET", http.MethodGet, nil, "Bearer s3cret", http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, strings.NewReader(valid), "Bearer s3cret", http.StatusMethodNotAllowed},
		{"no token", http.MethodPost, strings.NewReader(valid), "", http.StatusUnauthorized},
		{"wrong token", http.MethodPost, strings.NewReader(valid), "Bearer s3cre", http.StatusUnauthorized},
		{"token not as bearer", http.MethodPost, strings.NewReader(valid), "Basic s3cret", http.StatusUnauthorized},
		{"malformed JSON", http.MethodPost, strings.NewReader(valid[:len(valid)/2]), "Bearer s3cret", http.StatusBadRequest},
		{"not a notification", http.MethodPost, strings.NewReader(`["deployment_id", 1]`), "Bearer s3cret", http.StatusBadRequest},
		{"empty body", http.MethodPost, strings.NewReader(""), "Bearer s3cret", http.StatusBadRequest},
		{"too large", http.MethodPost, strings.NewReader(big), "Bearer s3cret", http.StatusRequestEntityTooLarge},
		// No Content-Length: the limit is found while reading.
		{"too large, chunked", http.MethodPost, io.MultiReader(strings.NewReader(big)), "Bearer s3cret", http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := r.post(tc.method, tc.body, tc.authorization)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("%s /webhook: %d %s, want %d", tc.method, code, body, tc.wantCode)
			}
		})
	}
	assertNothingStarted(t, r, h, d, p.Pid, map[int]float64{200: 0, 400: 3, 401: 3, 405: 2, 413: 2})
	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if es, err := st.Journal(context.Background(), d.ID, 10); err != nil || len(es) != 0 {
		t.Errorf("journal %+v (%v), want nothing", es, err)
	}
}

func TestRemediatorFailsToStart(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
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
		// A usage error: TestExitCodes.
		{"no Steam home", []string{"remediator", "--web.listen-address=127.0.0.1:0"}, 2, "required flag(s) '--steam.home' not provided"},
		{"token file missing", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--webhook.bearer-token-file=" + filepath.Join(t.TempDir(), "nope")}, 1, "reading bearer token"},
		{"token file empty", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--webhook.bearer-token-file=" + empty}, 1, "is empty"},
		{"java option without a dash", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--java.opts=-Xmx1g Xss1m"}, 1, `java option "Xss1m"`},
		{"match without a name", []string{"remediator", "--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0",
			"--webhook.match==x"}, 1, "empty label name"},
		{"reset of no deployment", []string{"remediator", "reset", "0", "--steam.home=" + h.Home.Dir}, 2, "is not a positive integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(testkit.Binary(t), tc.args...)
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
