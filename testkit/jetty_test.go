package testkit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// client waits as long as a cold Jetty can take to answer on a loaded machine
// (2 s was once too little).
var client = &http.Client{Timeout: 10 * time.Second}

func get(c *http.Client, port int, path string) (int, string, error) {
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// A normal war on real Jetty, started with Steam's argv: it serves, procid
// recognises it as the deployment's java, and SIGINT (Steam's stop) ends it
// at once because Go's exec leaves SIGINT's disposition at its default.
func TestDeploymentOnRealJetty(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	d, p := testkit.RunJetty(t, h, testkit.Spec{Name: "churn-gbm", LogicalName: "churn_gbm"}, jetty.War{})

	p.WaitOutput(t, "Started @", 5*time.Second)
	for _, tc := range []struct {
		path string
		want string // a JSON key the answer must hold; "" for /ping
	}{
		{path: "/ping"},
		{path: "/predict?x=1", want: "label"},
		{path: "/stats", want: "startTime"},
	} {
		code, body, err := get(client, int(d.Port), tc.path)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s = %d %v, want 200", tc.path, code, err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("GET %s: %q is not JSON: %v", tc.path, body, err)
		}
		if _, ok := m[tc.want]; tc.want != "" && !ok {
			t.Errorf("GET %s = %s, want a %q key", tc.path, body, tc.want)
		}
	}

	// The row holds the PID and procid names it the deployment's java.
	if int(d.PID) != p.Pid {
		t.Fatalf("row holds PID %d, started %d", d.PID, p.Pid)
	}
	identity, ok := d.Identity()
	if !ok {
		t.Fatalf("deployment has no identity: %s", d.Problem)
	}
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Inspect(p.Pid, identity); got.Status != procid.StatusRunning {
		t.Fatalf("procid says %s (%v) of the real JVM, want running", got.Status, got.Err)
	}
	found, err := in.Find(identity)
	if err != nil || len(found) != 1 || found[0].PID != p.Pid {
		t.Fatalf("Find = %v, %v; want just PID %d", found, err, p.Pid)
	}

	// SigIgn of SIGINT would show in /proc/PID/status's SigIgn mask.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if sigIgnored(string(status), syscall.SIGINT) {
		t.Fatalf("the JVM ignores SIGINT:\n%s", status)
	}
	sent := time.Now()
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the JVM to exit on SIGINT", func() bool { return !testkit.Alive(p.Pid) })
	t.Logf("SIGINT → exit: %s", time.Since(sent).Round(time.Millisecond))
}

// sigIgnored reads the SigIgn mask of a /proc/PID/status.
func sigIgnored(status string, sig syscall.Signal) bool {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			var mask uint64
			fmt.Sscanf(strings.TrimSpace(v), "%x", &mask)
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// Each of the war's modes fails (or not) the way real Jetty does, with the
// lines Steam and the remediator read.
func TestModes(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	for _, tc := range []struct {
		name     string
		war      jetty.War
		prints   []string
		pingCode int // 0: /ping does not answer
	}{
		{name: "init fails", war: jetty.War{Mode: jetty.ModeInitFail},
			prints: []string{"Failed startup of context", "UNAVAILABLE", "Started @"}, pingCode: http.StatusServiceUnavailable},
		{name: "hang", war: jetty.War{Mode: jetty.ModeHang}, prints: []string{"Started @"}},
		{name: "slow start", war: jetty.War{Mode: jetty.ModeSlowStart, StartDelay: 3 * time.Second},
			prints: []string{"Started @"}, pingCode: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testkit.AddJetty(t, h, testkit.Spec{Name: strings.ReplaceAll(tc.name, " ", "-")}, tc.war)
			launched := time.Now()
			p := testkit.LaunchJetty(t, h, d)
			for _, s := range tc.prints {
				p.WaitOutput(t, s, testkit.JettyStartTimeout)
			}
			if tc.war.StartDelay > 0 {
				if took := time.Since(launched); took < tc.war.StartDelay {
					t.Errorf("Started @ after %s, before the servlet's %s init", took, tc.war.StartDelay)
				}
			}
			if strings.Contains(p.Output(), "FAILED") {
				t.Errorf("Jetty 9.4 printed FAILED:\n%s", p.Output())
			}
			c := client
			if tc.pingCode == 0 { // no answer is the verdict: waiting longer only costs
				c = &http.Client{Timeout: 2 * time.Second}
			}
			code, _, err := get(c, int(d.Port), "/ping")
			if code != tc.pingCode {
				t.Errorf("/ping = %d (%v), want %d", code, err, tc.pingCode)
			}
			if !testkit.Alive(p.Pid) {
				t.Errorf("the JVM exited:\n%s", p.Output())
			}
		})
	}
}

// A second java on a taken port logs Jetty's BindException and exits 1.
func TestPortTaken(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	d, _ := testkit.RunJetty(t, h, testkit.Spec{Name: "first"}, jetty.War{})
	p := testkit.LaunchJetty(t, h, d)
	if code := p.ExitCode(t, testkit.JettyStartTimeout); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, s := range []string{"Failed to bind to", "BindException: Address already in use"} {
		if !strings.Contains(p.Output(), s) {
			t.Errorf("no %q in the output:\n%s", s, p.Output())
		}
	}
}

// The trap the tests avoid: a java started in the background by a
// non-interactive shell (as in `java -jar ... &` from a script) has SIGINT
// ignored, and the JVM keeps it so: Steam's SIGINTs would not stop it. Go's
// exec, Steam's and the tests', leaves SIGINT at its default.
func TestShellBackgroundIgnoresSIGINT(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	d := testkit.AddJetty(t, h, testkit.Spec{Name: "from-a-shell"}, jetty.War{})
	cmd := h.Command(h.Java, d)
	// The argv goes to sh as its positional parameters: no command is built
	// from text.
	sh := exec.Command("sh", append([]string{"-c", `"$@" >/dev/null 2>&1 & echo $!`, "sh"}, cmd.Args...)...)
	sh.Args[len(sh.Args)-len(cmd.Args)] = h.Java
	sh.Env = testkit.JettyEnv(t, h)
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("sh printed %q", out)
	}
	// Not our child: the home's cleanup kills it once procid has verified it.
	if err := testkit.WaitReady(context.Background(), int(d.Port), testkit.JettyStartTimeout); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !sigIgnored(string(status), syscall.SIGINT) {
		t.Fatalf("a java backgrounded by sh does not ignore SIGINT:\n%s", status)
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // an idle Jetty exits on SIGINT in about 0.1 s
	if !testkit.Alive(pid) {
		t.Fatal("the JVM exited on SIGINT after all")
	}
}
