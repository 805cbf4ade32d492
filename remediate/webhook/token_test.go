package webhook

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReadTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode // 0600 when 0
		missing bool        // no file at all
		dir     bool        // a directory instead of a file
		want    string
		wantErr string
	}{
		{name: "trailing newline", content: "s3cret\n", want: "s3cret"},
		{name: "CRLF", content: "s3cret\r\n", want: "s3cret"},
		{name: "surrounding whitespace", content: "  s3cret \t\n\n", want: "s3cret"},
		{name: "inner space kept", content: "s3 cret\n", want: "s3 cret"},
		{name: "owner only", content: "s3cret\n", mode: 0o400, want: "s3cret"},
		{name: "group-readable", content: "s3cret\n", mode: 0o640, want: "s3cret"},
		{name: "group-writable", content: "s3cret\n", mode: 0o660, want: "s3cret"},
		{name: "executable by others", content: "s3cret\n", mode: 0o601, want: "s3cret"},
		{name: "world-readable", content: "s3cret\n", mode: 0o644, wantErr: "readable or writable by others (mode 0644): run chmod o-rwx"},
		{name: "world-writable", content: "s3cret\n", mode: 0o602, wantErr: "(mode 0602)"},
		{name: "open to all", content: "s3cret\n", mode: 0o666, wantErr: "(mode 0666)"},
		{name: "empty", content: "", wantErr: "is empty"},
		{name: "only whitespace", content: " \n\t\n", wantErr: "is empty"},
		{name: "missing", missing: true, wantErr: "reading bearer token"},
		{name: "directory", dir: true, wantErr: "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			switch {
			case tc.dir:
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			case !tc.missing:
				writeToken(t, path, tc.content, tc.mode)
			}
			got, err := ReadTokenFile(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("token %q, want %q", got, tc.want)
			}
		})
	}
}

// writeToken writes a token file with the mode, whatever the umask; 0 means
// 0600.
func writeToken(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if mode == 0 {
		mode = 0o600
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// tokenServer serves the webhook with the token of a TokenFile.
func tokenServer(t *testing.T, path string) (*testServer, *TokenFile) {
	t.Helper()
	reg := prometheus.NewRegistry()
	tf, err := LoadTokenFile(path, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, Config{Token: tf.Token()})
	return s, tf
}

// status posts a valid notification with the bearer token and returns the
// reply's status code.
func (s *testServer) status(t *testing.T, token string) int {
	t.Helper()
	return s.do(t, http.MethodPost, bytes.NewReader(fixture(t, "firing.json")),
		http.Header{"Authorization": {"Bearer " + token}}).code
}

// TestTokenFileReload: a reload takes a good new token at once and turns
// the old one away; a reload of an unusable file keeps the token in use,
// except a file others can read, which leaves no token accepted; a FIFO is
// refused without waiting for a writer.
func TestTokenFileReload(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		content     string
		mode        os.FileMode
		remove      bool
		fifo        bool
		wantErr     string
		wantToken   string // accepted after the reload
		wantRefused string // refused after the reload
	}{
		{name: "rotated", content: "new-t0ken\n", wantToken: "new-t0ken", wantRefused: "old-t0ken"},
		{name: "rotated, group-readable", content: "new-t0ken\n", mode: 0o640, wantToken: "new-t0ken", wantRefused: "old-t0ken"},
		{name: "unchanged", content: "old-t0ken\n", wantToken: "old-t0ken"},
		{name: "world-readable", content: "new-t0ken\n", mode: 0o644, wantErr: "readable or writable by others", wantRefused: "old-t0ken"},
		{name: "world-readable, unchanged", content: "old-t0ken\n", mode: 0o644, wantErr: "readable or writable by others", wantRefused: "old-t0ken"},
		{name: "FIFO", fifo: true, wantErr: "not a regular file", wantToken: "old-t0ken"},
		{name: "emptied", content: "", wantErr: "is empty", wantToken: "old-t0ken"},
		{name: "removed", remove: true, wantErr: "no such file", wantToken: "old-t0ken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeToken(t, path, "old-t0ken\n", 0)
			s, tf := tokenServer(t, path)
			if code := s.status(t, "old-t0ken"); code != http.StatusOK {
				t.Fatalf("first token: %d, want 200", code)
			}

			if tc.remove || tc.fifo {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fifo {
				if err := syscall.Mkfifo(path, 0o600); err != nil {
					t.Fatal(err)
				}
			} else if !tc.remove {
				writeToken(t, path, tc.content, tc.mode)
			}
			err := tf.Reload("test")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Reload: %v, want error %q", err, tc.wantErr)
			}
			if tc.wantToken != "" {
				if code := s.status(t, tc.wantToken); code != http.StatusOK {
					t.Errorf("token %q after reload: %d, want 200", tc.wantToken, code)
				}
			}
			if tc.wantRefused != "" {
				if code := s.status(t, tc.wantRefused); code != http.StatusUnauthorized {
					t.Errorf("token %q after reload: %d, want 401", tc.wantRefused, code)
				}
			}
			wantFailures, wantLast := 0.0, 1.0
			if tc.wantErr != "" {
				wantFailures, wantLast = 1, 0
			}
			if got := testutil.ToFloat64(tf.reloads.WithLabelValues(reloadSuccess)); got != 1-wantFailures {
				t.Errorf(`token_reloads_total{result="success"} = %v, want %v`, got, 1-wantFailures)
			}
			if got := testutil.ToFloat64(tf.reloads.WithLabelValues(reloadFailure)); got != wantFailures {
				t.Errorf(`token_reloads_total{result="failure"} = %v, want %v`, got, wantFailures)
			}
			if got := testutil.ToFloat64(tf.lastSuccessful); got != wantLast {
				t.Errorf("token_last_reload_successful = %v, want %v", got, wantLast)
			}
		})
	}
}

// TestTokenFileWatch: changes to the file are picked up without a reload
// being asked for, whether the file is rewritten in place or replaced by a
// rename, and a bad version is reported once, not at every poll.
func TestTokenFileWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	writeToken(t, path, "first\n", 0)
	s, tf := tokenServer(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tf.Watch(ctx, 10*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })

	waitFor := func(token string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.status(t, token) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("token %q not accepted within 10s", token)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	writeToken(t, path, "second\n", 0) // in place
	waitFor("second")
	tmp := filepath.Join(dir, "token.new")
	writeToken(t, tmp, "third\n", 0o640)
	if err := os.Rename(tmp, path); err != nil { // replaced, as a secret manager does
		t.Fatal(err)
	}
	waitFor("third")
	if code := s.status(t, "second"); code != http.StatusUnauthorized {
		t.Errorf("replaced token: %d, want 401", code)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(tf.reloads.WithLabelValues(reloadFailure)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a world-readable token file was not reported within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // ten more polls
	if got := testutil.ToFloat64(tf.reloads.WithLabelValues(reloadFailure)); got != 1 {
		t.Errorf("failed reloads %v, want the bad file reported once", got)
	}
	// The exposed token may be known to anybody: it fails closed.
	if code := s.status(t, "third"); code != http.StatusUnauthorized {
		t.Errorf("token of a world-readable file: %d, want 401", code)
	}
	if err := os.Chmod(path, 0o600); err != nil { // the operator's fix
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(tf.lastSuccessful) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the fixed token file was not reloaded within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := s.status(t, "third"); code != http.StatusOK {
		t.Errorf("token after the file was fixed: %d, want 200", code)
	}
}

// TestTokenReloadUnderLoad: requests with the right token keep being
// accepted while the token is reloaded over and over: the swap leaves no
// moment without a token.
func TestTokenReloadUnderLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	writeToken(t, path, "steady\n", 0)
	s, tf := tokenServer(t, path)
	stop := make(chan struct{})
	var reloads sync.WaitGroup
	reloads.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if err := tf.Reload("test"); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if code := s.status(t, "steady"); code != http.StatusOK {
					t.Errorf("status %d during reloads, want 200", code)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	reloads.Wait()
	if got := testutil.ToFloat64(tf.reloads.WithLabelValues(reloadSuccess)); got < 1 {
		t.Errorf("%v reloads happened, want some", got)
	}
}

func TestLoadTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeToken(t, good, "s3cret\n", 0o640)
	open := filepath.Join(dir, "open")
	writeToken(t, open, "s3cret\n", 0o644)

	if _, err := LoadTokenFile(open, prometheus.NewRegistry(), nil); err == nil || !strings.Contains(err.Error(), "chmod o-rwx") {
		t.Errorf("world-readable file: %v, want a refusal that says what to do", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := LoadTokenFile(good, reg, nil); err != nil {
		t.Fatal(err)
	}
	const want = `# HELP steam_remediator_token_last_reload_successful Whether the last reload of the webhook's bearer token file succeeded (1) or failed (0).
# TYPE steam_remediator_token_last_reload_successful gauge
steam_remediator_token_last_reload_successful 1
# HELP steam_remediator_token_reloads_total Reloads of the webhook's bearer token file after it changed or on SIGHUP, by result; a failed reload keeps the previous token, except that a file others can read makes every token refused until it is fixed.
# TYPE steam_remediator_token_reloads_total counter
steam_remediator_token_reloads_total{result="failure"} 0
steam_remediator_token_reloads_total{result="success"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if _, err := LoadTokenFile(good, reg, nil); err == nil || !strings.Contains(err.Error(), "registering") {
		t.Errorf("registered twice: %v, want a registration error", err)
	}
}
