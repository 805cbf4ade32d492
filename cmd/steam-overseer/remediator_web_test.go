package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// emptyNotification is a valid notification that names no deployment: it
// checks a request's way in without reading the registry.
const emptyNotification = `{"version":"4","alerts":[]}`

// request sends a request to the remediator and returns the reply's status
// code and headers.
func (r *remediatorProcess) request(t *testing.T, method, path, contentType, body string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// TestRemediatorRoutes: a notification in a body a browser may send
// cross-origin is refused, each route answers only its own methods, and an
// unknown path is 404; none of it starts the dead deployment the refused
// notifications name.
func TestRemediatorRoutes(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	testkit.Kill(t, p)
	r := startRemediator(t, h)
	valid := notification(d.ID, 0)

	const json = "application/json"
	for _, tc := range []struct {
		name, method, path, contentType, body string
		wantCode                              int
		wantAllow                             string
	}{
		{"text/plain notification", "POST", "/webhook", "text/plain", valid, http.StatusUnsupportedMediaType, ""},
		{"form notification", "POST", "/webhook", "application/x-www-form-urlencoded", valid, http.StatusUnsupportedMediaType, ""},
		{"multipart notification", "POST", "/webhook", "multipart/form-data; boundary=b", valid, http.StatusUnsupportedMediaType, ""},
		{"notification without content type", "POST", "/webhook", "", valid, http.StatusUnsupportedMediaType, ""},
		{"GET webhook", "GET", "/webhook", "", "", http.StatusMethodNotAllowed, "POST"},
		{"POST to the landing page", "POST", "/", json, valid, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST to metrics", "POST", "/metrics", json, valid, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST to healthy", "POST", "/-/healthy", json, valid, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE ready", "DELETE", "/-/ready", "", "", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"unknown path", "GET", "/nope", "", "", http.StatusNotFound, ""},
		{"mistyped webhook URL", "POST", "/webhooks", json, valid, http.StatusNotFound, ""},
		{"webhook with a slash", "POST", "/webhook/", json, valid, http.StatusNotFound, ""},
		{"under the landing page", "GET", "/index.html", "", "", http.StatusNotFound, ""},
		// Positive controls.
		{"landing page", "GET", "/", "", "", http.StatusOK, ""},
		{"HEAD landing page", "HEAD", "/", "", "", http.StatusOK, ""},
		{"HEAD metrics", "HEAD", "/metrics", "", "", http.StatusOK, ""},
		{"healthy", "GET", "/-/healthy", "", "", http.StatusOK, ""},
		{"ready", "GET", "/-/ready", "", "", http.StatusOK, ""},
		{"JSON with charset", "POST", "/webhook", "application/json; charset=utf-8", emptyNotification, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, header := r.request(t, tc.method, tc.path, tc.contentType, tc.body)
			if code != tc.wantCode {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.wantCode)
			}
			if got := header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
		})
	}
	assertNothingStarted(t, r, h, d, p.Pid, map[int]float64{200: 1, 405: 1, 415: 4})
}

// assertNothingStarted checks that the webhook answered as many requests
// with each code as wantCodes says and queued nothing, then stops the
// remediator and checks that the deployment, dead with the PID in its row,
// was neither started nor touched.
func assertNothingStarted(t *testing.T, r *remediatorProcess, h *testkit.Home, d steam.Deployment, pid int, wantCodes map[int]float64) {
	t.Helper()
	for code, want := range wantCodes {
		if got := r.metric(t, fmt.Sprintf(`steam_remediator_webhook_requests_total{code="%d"}`, code)); got != want {
			t.Errorf("webhook requests answered %d: %v, want %v", code, got, want)
		}
	}
	if got := r.metric(t, `steam_remediator_alerts_total{outcome="queued"}`); got != 0 {
		t.Errorf("%v alerts queued, want 0", got)
	}
	r.drain(t)
	if n := testkit.StartsLogged(t, h, d.ID); n != 0 {
		t.Errorf("%d starts, want 0", n)
	}
	if got := h.Deployment(d.ID).PID; got != int64(pid) {
		t.Errorf("row PID %d, want %d untouched", got, pid)
	}
}

// writeFile writes a file with exactly the mode, whatever the umask.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestRemediatorAuthSettings: settings under which Alertmanager could not
// get in, or anybody could read the token, stop the remediator at once
// with a message that says what to change; the settings next to them
// start.
func TestRemediatorAuthSettings(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, content, mode)
		return path
	}
	token := file("token", "s3cret\n", 0o600)
	shared := file("token-shared", "s3cret\n", 0o640)
	worldReadable := file("token-world-readable", "s3cret\n", 0o644)
	worldWritable := file("token-world-writable", "s3cret\n", 0o622)
	empty := file("token-empty", "\n", 0o600)
	basicAuth := file("web-basic-auth.yml", "basic_auth_users:\n  alertmanager: $2y$10$qRTBuFoULoYNA7AQ/F3ck.trZBPyjV64.oA4ZsSBCIWvXuvQlQTuu\n", 0o600)
	headers := file("web-headers.yml", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n", 0o600)
	broken := file("web-broken.yml", "basic_auth_users: [\n", 0o600)

	for _, tc := range []struct {
		name    string
		args    []string
		wantLog string
	}{
		{"bearer token and basic auth", []string{"--webhook.bearer-token-file=" + token, "--web.config.file=" + basicAuth},
			"remove basic_auth_users from " + basicAuth + ", or drop --webhook.bearer-token-file"},
		{"world-readable token", []string{"--webhook.bearer-token-file=" + worldReadable},
			"is readable or writable by others (mode 0644): run chmod o-rwx on it"},
		{"world-writable token", []string{"--webhook.bearer-token-file=" + worldWritable}, "(mode 0622)"},
		{"empty token", []string{"--webhook.bearer-token-file=" + empty}, "is empty"},
		{"broken web config", []string{"--web.config.file=" + broken}, "checking --web.config.file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSubprocess(t, append(os.Environ(), "STEAM_HOME="), append([]string{"remediator",
				"--steam.home=" + h.Home.Dir, "--web.listen-address=127.0.0.1:0"}, tc.args...)...)
			if code := p.exitCode(t); code != 1 || !strings.Contains(p.stderr.String(), tc.wantLog) {
				t.Errorf("exit code %d, want 1; log does not say %q?\n%s", code, tc.wantLog, p.stderr.String())
			}
		})
	}

	for _, tc := range []struct {
		name  string
		args  []string
		token string // sent with a notification, which must be accepted
	}{
		{"group-readable token and web config without users", []string{"--webhook.bearer-token-file=" + shared, "--web.config.file=" + headers}, "s3cret"},
		{"basic auth without a token", []string{"--web.config.file=" + basicAuth}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRemediator(t, h, tc.args...)
			if tc.token == "" {
				return // listening is the proof
			}
			if code, body, err := r.post(http.MethodPost, strings.NewReader(emptyNotification), "Bearer "+tc.token); err != nil || code != http.StatusOK {
				t.Errorf("with the token: %d %s %v, want 200", code, body, err)
			}
			if code, _, err := r.post(http.MethodPost, strings.NewReader(emptyNotification), ""); err != nil || code != http.StatusUnauthorized {
				t.Errorf("without the token: %d %v, want 401", code, err)
			}
		})
	}
}

// accepts reports whether the webhook takes a notification with the token.
func (r *remediatorProcess) accepts(t *testing.T, token string) bool {
	t.Helper()
	code, body, err := r.post(http.MethodPost, strings.NewReader(emptyNotification), "Bearer "+token)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK && code != http.StatusUnauthorized {
		t.Fatalf("POST /webhook: %d %s", code, body)
	}
	return code == http.StatusOK
}

// hangup sends the remediator SIGHUP.
func hangup(t *testing.T, r *remediatorProcess) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestRemediatorTokenRotation: a token rotated in its file is taken
// without a restart, when the file changes and on SIGHUP, and the old one
// is refused; a rotation to an unusable file keeps the token in use.
func TestRemediatorTokenRotation(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)

	t.Run("file changed", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "token")
		writeFile(t, path, "first\n", 0o600)
		r := startRemediator(t, h, "--webhook.bearer-token-file="+path, "--webhook.bearer-token-poll-interval=100ms")
		if !r.accepts(t, "first") {
			t.Fatal("first token refused")
		}
		writeFile(t, path, "second\n", 0o600) // rewritten in place
		testkit.Eventually(t, 10*time.Second, "the rewritten token to be accepted", func() bool { return r.accepts(t, "second") })
		next := filepath.Join(dir, "token.next")
		writeFile(t, next, "third\n", 0o640)
		if err := os.Rename(next, path); err != nil { // replaced, as a secret manager does
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "the replaced token to be accepted", func() bool { return r.accepts(t, "third") })
		for _, old := range []string{"first", "second"} {
			if r.accepts(t, old) {
				t.Errorf("old token %q still accepted", old)
			}
		}
		if got := r.metric(t, `steam_remediator_token_reloads_total{result="success"}`); got < 2 {
			t.Errorf("%v successful reloads, want at least 2", got)
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		writeFile(t, path, "first\n", 0o600)
		// No polling: only the signal can bring the new token in.
		r := startRemediator(t, h, "--webhook.bearer-token-file="+path, "--webhook.bearer-token-poll-interval=0")
		writeFile(t, path, "second\n", 0o600)
		if !r.accepts(t, "first") || r.accepts(t, "second") {
			t.Fatal("the token changed before SIGHUP")
		}
		hangup(t, r)
		testkit.Eventually(t, 10*time.Second, "the new token to be accepted after SIGHUP", func() bool { return r.accepts(t, "second") })
		if r.accepts(t, "first") {
			t.Error("old token still accepted after SIGHUP")
		}

		// A rotation to a file that is not a token file (a FIFO, which an
		// open would wait on for a writer) is refused at once, logged and
		// counted; the token in use stays.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		hangup(t, r)
		testkit.Eventually(t, 10*time.Second, "the FIFO's reload to fail", func() bool {
			return r.metric(t, `steam_remediator_token_reloads_total{result="failure"}`) == 1
		})
		if got := r.metric(t, "steam_remediator_token_last_reload_successful"); got != 0 {
			t.Errorf("token_last_reload_successful %v, want 0", got)
		}
		if log := r.stderr.String(); !strings.Contains(log, "Reloading the bearer token failed; keeping the previous token") ||
			!strings.Contains(log, "is not a regular file") {
			t.Errorf("log does not report the refused FIFO:\n%s", log)
		}
		if !r.accepts(t, "second") {
			t.Error("a refused FIFO changed the token")
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "second\n", 0o600)
		hangup(t, r)
		testkit.Eventually(t, 10*time.Second, "the token file to be read again", func() bool {
			return r.metric(t, "steam_remediator_token_last_reload_successful") == 1
		})

		// A token file others can read exposes the token in use as much as
		// a new one: no token is accepted until the file is fixed.
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		hangup(t, r)
		testkit.Eventually(t, 10*time.Second, "the exposed file's reload to fail", func() bool {
			return r.metric(t, `steam_remediator_token_reloads_total{result="failure"}`) == 2
		})
		if r.accepts(t, "second") || r.accepts(t, "first") {
			t.Error("a token is still accepted while its file is readable by others")
		}
		if got := r.metric(t, "steam_remediator_token_last_reload_successful"); got != 0 {
			t.Errorf("token_last_reload_successful %v, want 0", got)
		}
		if log := r.stderr.String(); !strings.Contains(log, "refusing every request until the file is fixed") {
			t.Errorf("log does not report the exposed token:\n%s", log)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		hangup(t, r)
		testkit.Eventually(t, 10*time.Second, "the fixed file's token to be accepted", func() bool { return r.accepts(t, "second") })
	})

	t.Run("SIGHUP without a token", func(t *testing.T) {
		r := startRemediator(t, h)
		if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "SIGHUP to be logged", func() bool {
			return strings.Contains(r.stderr.String(), "nothing to reload")
		})
		if code, _ := get(t, r.base+"/-/healthy"); code != http.StatusOK {
			t.Errorf("after SIGHUP: /-/healthy %d, want 200", code)
		}
	})
}

// unknownNotification is a notification of about size bytes, of firing
// alerts for deployment ids from first on, distinct ids of them cycling.
func unknownNotification(first int64, distinct, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"4","status":"firing","receiver":"steam-remediator","alerts":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"SteamDeploymentDown","deployment_id":"%d"},"fingerprint":"%016x"}`,
			first+int64(i%distinct), i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestRemediatorUnknownDeployments: ids that are not in Steam's registry
// cost no lock file, journal row or place in the queue: a 1 MiB
// notification of made-up ids is refused whole, one of a few unknown ids
// repeated is counted and dropped, and a real alert after them heals its
// deployment at once. An unreadable registry is answered 503, for
// Alertmanager to retry.
func TestRemediatorUnknownDeployments(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	testkit.Kill(t, p)
	r := startRemediator(t, h)
	post := func(body []byte) (int, string) {
		t.Helper()
		start := time.Now()
		code, reply, err := r.post(http.MethodPost, bytes.NewReader(body), "")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d bytes answered %d in %v", len(body), code, time.Since(start).Round(time.Millisecond))
		return code, reply
	}

	// Steam's database away, as during a restore: nothing can be checked,
	// and a deployment the remediator has never seen is not queued.
	db := h.Home.DBPath()
	if err := os.Rename(db, db+".away"); err != nil {
		t.Fatal(err)
	}
	code, reply := post([]byte(notification(d.ID+1, 0)))
	if err := os.Rename(db+".away", db); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(reply, "retry later (meanwhile 0 alerts") {
		t.Errorf("registry unreadable: %d %s, want 503 asking for a retry", code, reply)
	}
	if got := r.metric(t, "steam_remediator_webhook_registry_errors_total"); got != 1 {
		t.Errorf("registry errors %v, want 1", got)
	}

	const unknownFrom = 1_000_000
	flood := unknownNotification(unknownFrom, 1<<30, 1<<20)
	code, reply = post(flood)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(reply, "more than the 1 Steam has plus a margin") {
		t.Errorf("1 MiB of distinct unknown ids: %d %.300s, want 413", code, reply)
	}
	repeated := unknownNotification(unknownFrom, 50, 1<<20)
	code, reply = post(repeated)
	if code != http.StatusOK || !strings.Contains(reply, `"queued":0`) || !strings.Contains(reply, `"outcome":"unknown_deployment"`) {
		t.Errorf("1 MiB of 50 unknown ids: %d %.300s, want 200 with nothing queued", code, reply)
	}
	alerts := bytes.Count(repeated, []byte(`"status":"firing","labels"`))
	if got := r.metric(t, `steam_remediator_alerts_total{outcome="unknown_deployment"}`); got != float64(alerts) {
		t.Errorf("unknown_deployment alerts %v, want %d", got, alerts)
	}

	start := time.Now()
	if code, reply := r.notify(t, d.ID); code != http.StatusOK || !strings.Contains(reply, `"queued":1`) {
		t.Fatalf("real alert: %d %s", code, reply)
	}
	if err := testkit.WaitReady(context.Background(), int(d.Port), 5*time.Second); err != nil {
		t.Fatalf("the real deployment did not serve within 5s of its alert: %v", err)
	}
	t.Logf("the real deployment served %v after its alert", time.Since(start).Round(time.Millisecond))
	r.drain(t)

	locks, err := os.ReadDir(filepath.Join(filepath.Dir(db), "steam-overseer.locks"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range locks {
		names = append(names, l.Name())
	}
	if want := fmt.Sprintf("deployment-%d.lock", d.ID); len(names) != 1 || names[0] != want {
		t.Errorf("lock files %v, want only %s", names, want)
	}
	st, err := state.OpenReadOnly(h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []int64{unknownFrom, unknownFrom + 49} {
		if es, err := st.Journal(context.Background(), id, 10); err != nil || len(es) != 0 {
			t.Errorf("journal of unknown deployment %d: %+v %v, want nothing", id, es, err)
		}
	}
}
