package demo_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/steam-overseer/steam-overseer/demo"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// output collects the demo's stdout line by line as it runs.
type output struct {
	mu    sync.Mutex
	lines []string
}

func (o *output) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		o.mu.Lock()
		o.lines = append(o.lines, sc.Text())
		o.mu.Unlock()
	}
}

// find returns the submatches of the first line matching re.
func (o *output) find(re *regexp.Regexp) []string { return o.findAfter(0, re) }

// findAfter looks only at the lines after the first n, so that a report
// the demo printed before a fault (a loaded machine's slow probe) is not
// taken for the fault's.
func (o *output) findAfter(n int, re *regexp.Regexp) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.lines[n:] {
		if m := re.FindStringSubmatch(l); m != nil {
			return m
		}
	}
	return nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

func (o *output) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lines)
}

var (
	homeLine       = regexp.MustCompile(`Steam home:\s+(\S+)`)
	readyLine      = regexp.MustCompile(`Ctrl-C stops everything`)
	deploymentLine = regexp.MustCompile(`^\s+(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+http`)
	removedLine    = regexp.MustCompile(`Stopped everything the demo started and removed (\S+)`)
)

func TestDemo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		healer  string
		jetty   bool
		healing string // what the demo says heals
	}{
		{"reconcile", demo.HealerReconcile, false, "reconcile sweep"},
		{"alertmanager", demo.HealerAlertmanager, false, "Alertmanager calls the remediator's webhook"},
		{"alertmanager-jetty", demo.HealerAlertmanager, true, "Alertmanager calls the remediator's webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.healer == demo.HealerAlertmanager {
				// The demo's real loop needs them.
				testkit.RequireTool(t, "prometheus")
				testkit.RequireTool(t, "prometheus-alertmanager")
			}
			args := []string{"--healer=" + tc.healer}
			if tc.jetty {
				testkit.RequireTool(t, "javac")
				args = append(args, "--jetty")
			}
			runDemo(t, tc.healer, tc.jetty, tc.healing, args...)
		})
	}
}

func runDemo(t *testing.T, healer string, jetty bool, healing string, args ...string) {
	addr := func() string { return testkit.LoopbackAddr(t) }
	exporter := addr()
	// The demo keeps everything it writes in a temp folder; under this one,
	// whatever it leaves behind is known to be its own.
	tmp := t.TempDir()
	cmd := exec.Command(testkit.Binary(t), append([]string{"demo",
		"--exporter.listen-address=" + exporter, "--remediator.listen-address=" + addr(),
		"--prometheus.listen-address=" + addr(), "--alertmanager.listen-address=" + addr()}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &output{}
	read := make(chan struct{})
	go func() { out.read(stdout); close(read) }()
	var waitErr error
	exited := make(chan struct{})
	go func() { <-read; waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stopDemo(t, cmd, exited, tmp)
		if t.Failed() {
			t.Logf("demo output:\n%s\ndemo log:\n%s", out, stderr.String())
		}
	})

	testkit.Eventually(t, 60*time.Second, "the demo to come up", func() bool { return out.find(readyLine) != nil })
	if !strings.Contains(out.String(), healing) {
		t.Errorf("the demo does not say it heals by %q", healing)
	}
	home := steam.Home{Dir: out.find(homeLine)[1]}
	var pids []int
	for _, l := range strings.Split(out.String(), "\n") {
		if m := deploymentLine.FindStringSubmatch(l); m != nil {
			pid, _ := strconv.Atoi(m[4])
			pids = append(pids, pid)
		}
	}
	if len(pids) != 3 {
		t.Fatalf("the demo lists %d deployments, want 3", len(pids))
	}
	testkit.Eventually(t, 10*time.Second, "the exporter to report 3 deployments up", func() bool {
		return countUp(exporter) == 3
	})
	// The demo's own traffic, read from each deployment's /stats.
	testkit.Eventually(t, 30*time.Second, "the exporter to report predictions of 3 deployments", func() bool {
		return countPredicting(exporter) == 3
	})

	// Kill the first deployment, verified as the demo's java first.
	registry := steam.NewRegistry(home)
	victim, err := registry.Deployment(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	identity, _ := victim.Identity()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	p := in.Inspect(pids[0], identity)
	if p.Status != procid.StatusRunning {
		t.Fatalf("the demo's first PID %d is %s, not its deployment", pids[0], p.Status)
	}
	if jetty {
		// Real Jetty, under the real java, answering with the scoring war.
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pids[0])); !strings.Contains(exe, "/jvm/") {
			t.Errorf("the first deployment runs %s, not a JVM", exe)
		}
		if b, err := get(fmt.Sprintf("http://127.0.0.1:%d/predict", victim.Port)); !strings.Contains(b, "classProbabilities") {
			t.Errorf("the first deployment's /predict answers %q (%v)", b, err)
		}
	}
	remediatorLog := filepath.Join(filepath.Dir(home.Dir), "remediator.log")
	logBefore, _ := os.ReadFile(remediatorLog)
	killedAt := out.count()
	if err := in.Signal(p, identity, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	back := regexp.MustCompile(fmt.Sprintf(`%s \(id 1\) is back: PID (\d+), serving again (\S+) after it went down`, regexp.QuoteMeta(victim.Name)))
	var m []string
	testkit.Eventually(t, 60*time.Second, "the demo to report the deployment back", func() bool { m = out.findAfter(killedAt, back); return m != nil })
	t.Logf("killed deployment serving again %s after it went down", m[2])
	if healer == demo.HealerAlertmanager {
		healedByExitWatch(t, exporter, remediatorLog, len(logBefore))
	}
	newPID, _ := strconv.Atoi(m[1])
	if d, err := registry.Deployment(context.Background(), 1); err != nil || int(d.PID) != newPID || newPID == pids[0] {
		t.Fatalf("Steam's row holds PID %d (%v), want the new PID %d (killed %d)", d.PID, err, newPID, pids[0])
	}
	testkit.Eventually(t, 10*time.Second, "the exporter to report 3 deployments up again", func() bool {
		return countUp(exporter) == 3
	})
	if healer == demo.HealerAlertmanager {
		hang(t, out, registry, in, pids[1])
	}

	// Ctrl-C: everything stops, the home is removed.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("the demo exited with %v after SIGINT", waitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not stop within 60s of SIGINT")
	}
	if m := out.find(removedLine); m == nil || !strings.HasPrefix(home.Dir, m[1]) {
		t.Errorf("the demo did not say it removed its files (%v)", m)
	}
	if _, err := os.Stat(home.Dir); !os.IsNotExist(err) {
		t.Errorf("the demo's Steam home %s is still there (stat: %v)", home.Dir, err)
	}
	if left := processesUnder(t, filepath.Dir(home.Dir)); len(left) > 0 {
		t.Errorf("processes of the demo still run after it stopped: %v", left)
	}
}

// healedByExitWatch checks that the exit watch, not Prometheus, healed the
// killed deployment: the exporter saw the exit and the first notification
// the remediator accepted after the kill (its log from offset) was the
// exporter's SteamDeploymentExited.
func healedByExitWatch(t *testing.T, exporter, remediatorLog string, offset int) {
	t.Helper()
	metrics, err := get("http://" + exporter + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, `steam_exporter_exit_watch_exits_total{reason="exited"} 1`) {
		t.Errorf("the exporter's exit watch did not count the exit:\n%s", grepLines(metrics, "steam_exporter_"))
	}
	b, err := os.ReadFile(remediatorLog)
	if err != nil {
		t.Fatal(err)
	}
	accepted := grepLines(string(b[offset:]), "Accepted webhook notification")
	first, _, _ := strings.Cut(accepted, "\n")
	if !strings.Contains(first, `alertname=\"SteamDeploymentExited\"`) {
		t.Errorf("the first notification after the kill was not SteamDeploymentExited:\n%s", accepted)
	}
}

func grepLines(text, substr string) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// hang does the demo's second thing to try: kill -STOP the second
// deployment's java (verified first), which stays alive and answers
// nothing until the alert has it stopped and started afresh.
func hang(t *testing.T, out *output, registry *steam.Registry, in *procid.Inspector, pid int) {
	t.Helper()
	if !strings.Contains(out.String(), fmt.Sprintf("kill -STOP %d", pid)) {
		t.Errorf("the demo does not suggest kill -STOP %d", pid)
	}
	d, err := registry.Deployment(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	identity, _ := d.Identity()
	p := in.Inspect(pid, identity)
	if p.Status != procid.StatusRunning {
		t.Fatalf("the demo's second PID %d is %s, not its deployment", pid, p.Status)
	}
	stoppedAt, stoppedLine := time.Now(), out.count()
	if err := in.Signal(p, identity, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Continued when the test ends, should nothing have killed it.
	t.Cleanup(func() { _ = in.Signal(p, identity, syscall.SIGCONT) })
	name := regexp.QuoteMeta(d.Name)
	testkit.Eventually(t, 30*time.Second, "the demo to report the stopped deployment unresponsive", func() bool {
		return out.findAfter(stoppedLine, regexp.MustCompile(name+` \(id 2\) is unresponsive: PID `+strconv.Itoa(pid)+` is alive`)) != nil
	})
	back := regexp.MustCompile(name + ` \(id 2\) is back: PID (\d+)`)
	var m []string
	testkit.Eventually(t, 120*time.Second, "the demo to report the stopped deployment back", func() bool { m = out.findAfter(stoppedLine, back); return m != nil })
	t.Logf("stopped deployment serving again after %s", time.Since(stoppedAt).Round(100*time.Millisecond))
	newPID, _ := strconv.Atoi(m[1])
	if d, err := registry.Deployment(context.Background(), 2); err != nil || int(d.PID) != newPID || newPID == pid {
		t.Fatalf("Steam's row holds PID %d (%v), want the new PID %d (stopped %d)", d.PID, err, newPID, pid)
	}
	if testkit.Alive(pid) && in.Inspect(pid, identity).Status == procid.StatusRunning {
		t.Errorf("the stopped java %d still runs beside its replacement %d", pid, newPID)
	}
}

// stopDemo stops the demo the way a person would, with Ctrl-C, and waits
// for it to clean up; a demo that does not stop is killed. A demo killed
// (or failed) half-way leaves its own children behind, each in its own
// process group: they are found under tmp and killed too.
func stopDemo(t *testing.T, cmd *exec.Cmd, exited <-chan struct{}, tmp string) {
	select {
	case <-exited:
	default:
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			t.Errorf("the demo did not stop within 60s of SIGINT; killing it and what it started")
			_ = cmd.Process.Kill()
		}
	}
	killLeftovers(t, tmp)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Errorf("the demo's output is still open a minute after it was killed")
	}
}

// killLeftovers SIGKILLs what a demo under tmp left running. Its services
// go first, so that no remediator restarts a deployment killed after it;
// they are the processes whose command line names tmp, re-checked through
// a pidfd before the signal. The deployments go next, each verified as one
// of the demo home's by procid.
func killLeftovers(t *testing.T, tmp string) {
	for _, pid := range pidsNaming(t, tmp) {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		if argv := cmdline(pid); len(argv) > 0 && filepath.Base(argv[0]) != "java" && strings.Contains(strings.Join(argv, " "), tmp) {
			t.Logf("killing the demo's leftover %d: %s", pid, strings.Join(argv, " "))
			_ = unix.PidfdSendSignal(fd, syscall.SIGKILL, nil, 0)
		}
		unix.Close(fd)
	}
	in, err := procid.NewInspector("")
	if err != nil {
		t.Errorf("cleaning up: %v", err)
		return
	}
	homes, _ := filepath.Glob(filepath.Join(tmp, "*", "steam"))
	for _, dir := range homes {
		ds, err := steam.NewRegistry(steam.Home{Dir: dir}).Deployments(context.Background())
		if err != nil {
			continue // the demo removed it, or never got as far
		}
		for _, d := range ds {
			id, ok := d.Identity()
			if !ok {
				continue
			}
			found, _ := in.Find(id)
			for _, p := range found {
				t.Logf("killing the demo's leftover deployment %s, PID %d", d.Name, p.PID)
				_ = in.Signal(p, id, syscall.SIGKILL)
			}
		}
	}
}

// countUp counts the deployments the exporter reports up.
func countUp(exporter string) int {
	b, err := get("http://" + exporter + "/metrics")
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(b, "\n") {
		if strings.HasPrefix(l, "steam_deployment_up{") && strings.HasSuffix(l, " 1") {
			n++
		}
	}
	return n
}

// countPredicting is how many deployments the exporter says made predictions.
func countPredicting(exporter string) int {
	b, err := get("http://" + exporter + "/metrics")
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(b, "\n") {
		if strings.HasPrefix(l, "steam_deployment_prediction_duration_seconds_count{") && !strings.HasSuffix(l, " 0") {
			n++
		}
	}
	return n
}

// get returns the body of url.
func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// processesUnder lists live processes whose command line names a path under
// dir: the demo's deployments, exporter, remediator, Prometheus and
// Alertmanager all do.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	for _, pid := range pidsNaming(t, dir) {
		found = append(found, fmt.Sprintf("%d: %s", pid, strings.Join(cmdline(pid), " ")))
	}
	return found
}

// pidsNaming lists the live processes whose command line holds s.
func pidsNaming(t *testing.T, s string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if strings.Contains(strings.Join(cmdline(pid), " "), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cmdline reads a process's arguments; nil when it is gone or has none.
func cmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// TestDemoPortTaken: a port already taken stops the demo with an error that
// names the program and the cause, and leaves nothing behind.
func TestDemoPortTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tmp := t.TempDir()
	cmd := exec.Command(testkit.Binary(t), "demo", "--healer="+demo.HealerReconcile,
		"--exporter.listen-address="+taken.Addr().String(), "--remediator.listen-address=127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("demo with its exporter's port taken: %v, want exit code 1\n%s", err, out)
	}
	for _, want := range []string{"exporter exited", "address already in use"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's error does not say %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the demo left %v behind", left)
	}
	if left := processesUnder(t, tmp); len(left) > 0 {
		t.Errorf("processes of the demo still run: %v", left)
	}
}

// TestDemoJettyMissing: without javac (here, a PATH that finds nothing),
// --jetty stops the demo before it makes anything, with one sentence naming
// the Debian packages to install.
func TestDemoJettyMissing(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	cmd := exec.Command(testkit.Binary(t), "demo", "--jetty", "--healer="+demo.HealerReconcile)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("demo --jetty without javac: %v, want exit code 1\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "javac is not installed") ||
		!strings.Contains(lines[0], "install Debian's libjetty9-java and openjdk-17-jdk-headless") {
		t.Errorf("the demo says %q, want one line naming javac and the packages to install", out)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the demo left %v behind", left)
	}
}
