package demo_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
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

	"github.com/steam-overseer/steam-overseer/internal/demo"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steamtest"
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
func (o *output) find(re *regexp.Regexp) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.lines {
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

var (
	homeLine       = regexp.MustCompile(`Steam home:\s+(\S+)`)
	readyLine      = regexp.MustCompile(`Ctrl-C stops everything`)
	deploymentLine = regexp.MustCompile(`^\s+(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+http`)
	removedLine    = regexp.MustCompile(`Stopped everything the demo started and removed (\S+)`)
)

func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		healer  string
		healing string // what the demo says heals
	}{
		{demo.HealerReconcile, "reconcile sweep"},
		{demo.HealerAlertmanager, "Alertmanager calls the remediator's webhook"},
	} {
		t.Run(tc.healer, func(t *testing.T) {
			if tc.healer == demo.HealerAlertmanager {
				for _, bin := range []string{"prometheus", "prometheus-alertmanager"} {
					if _, err := exec.LookPath(bin); err != nil {
						t.Fatalf("%s is not installed: the demo's real loop needs Debian's prometheus and prometheus-alertmanager (./scripts/test installs them)", bin)
					}
				}
			}
			runDemo(t, tc.healer, tc.healing)
		})
	}
}

func runDemo(t *testing.T, healer, healing string) {
	addr := func() string {
		port, err := steamfixture.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	exporter := addr()
	cmd := exec.Command(steamtest.Binary(t), "demo", "--healer="+healer,
		"--exporter.listen-address="+exporter, "--remediator.listen-address="+addr(),
		"--prometheus.listen-address="+addr(), "--alertmanager.listen-address="+addr())
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
	exited := make(chan error, 1)
	go func() { <-read; exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-read
		if t.Failed() {
			t.Logf("demo output:\n%s\ndemo log:\n%s", out, stderr.String())
		}
	})

	steamtest.Eventually(t, 60*time.Second, "the demo to come up", func() bool { return out.find(readyLine) != nil })
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
	steamtest.Eventually(t, 10*time.Second, "the exporter to report 3 deployments up", func() bool {
		return countUp(exporter) == 3
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
	if err := in.Signal(p, identity, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	back := regexp.MustCompile(fmt.Sprintf(`%s \(id 1\) is back: PID (\d+)`, regexp.QuoteMeta(victim.Name)))
	steamtest.Eventually(t, 60*time.Second, "the demo to report the deployment back", func() bool { return out.find(back) != nil })
	newPID, _ := strconv.Atoi(out.find(back)[1])
	if d, err := registry.Deployment(context.Background(), 1); err != nil || int(d.PID) != newPID || newPID == pids[0] {
		t.Fatalf("Steam's row holds PID %d (%v), want the new PID %d (killed %d)", d.PID, err, newPID, pids[0])
	}
	steamtest.Eventually(t, 10*time.Second, "the exporter to report 3 deployments up again", func() bool {
		return countUp(exporter) == 3
	})

	// Ctrl-C: everything stops, the home is removed.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the demo exited with %v after SIGINT", err)
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

// countUp counts the deployments the exporter reports up.
func countUp(exporter string) int {
	resp, err := http.Get("http://" + exporter + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "steam_deployment_up{") && strings.HasSuffix(l, " 1") {
			n++
		}
	}
	return n
}

// processesUnder lists live processes whose command line names a path under
// dir: the demo's deployments, exporter, remediator, Prometheus and
// Alertmanager all do.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if cmdline := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmdline, dir) {
			found = append(found, e.Name()+": "+cmdline)
		}
	}
	return found
}
