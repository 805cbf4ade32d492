package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// subprocess is a steam-overseer command run by a test: its stderr is
// collected, and it is killed when the test ends.
type subprocess struct {
	cmd    *exec.Cmd
	stderr *testkit.Buffer
	done   chan struct{}
}

func startSubprocess(t *testing.T, env []string, args ...string) *subprocess {
	t.Helper()
	p := &subprocess{stderr: &testkit.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(testkit.Binary(t), args...)
	p.cmd.Env = env
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s logged:\n%s", strings.Join(p.cmd.Args, " "), p.stderr.String())
		}
	})
	return p
}

// exitCode waits for the command to exit on its own.
func (p *subprocess) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still running; log:\n%s", strings.Join(p.cmd.Args, " "), p.stderr.String())
		return -1
	}
}

// startExporter runs `steam-overseer exporter` with args and no $STEAM_HOME.
func startExporter(t *testing.T, args ...string) *subprocess {
	t.Helper()
	return startSubprocess(t, append(os.Environ(), "STEAM_HOME="), append([]string{"exporter"}, args...)...)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestExporterServes(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startExporter(t, "--steam.home="+h.Home.Dir, "--web.listen-address="+addr)
	base := "http://" + addr
	testkit.Eventually(t, 10*time.Second, "the exporter to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		fmt.Sprintf(`steam_deployment_up{deployment="churn",deployment_id="%d"} 1`, d.ID),
		fmt.Sprintf(`steam_deployment_restarts_total{deployment="churn",deployment_id="%d"} 0`, d.ID),
		"steam_exporter_scrape_success 1",
		"steam_exporter_state_scrape_success 1",
		"steam_exporter_build_info{",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	code, body = get(t, base+"/")
	if code != http.StatusOK || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("GET /: %d, landing page without a link to /metrics:\n%s", code, body)
	}
	// Prometheus' own health endpoints, as the remediator answers them.
	for path, want := range map[string]string{"/-/healthy": "Healthy\n", "/-/ready": "Ready\n"} {
		if code, body := get(t, base+path); code != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}

	// Steam's database goes away: the exporter keeps serving and says so.
	aside := h.Home.DBPath() + ".aside"
	if err := os.Rename(h.Home.DBPath(), aside); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, base+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "steam_exporter_scrape_success 0") ||
		strings.Contains(body, "steam_deployment_up{") {
		t.Errorf("GET /metrics without steam.db: %d\n%s", code, body)
	}
	// The log line was written before the response, but reaches the buffer
	// through a pipe, a moment later.
	testkit.Eventually(t, 10*time.Second, "the failure to be logged with its cause", func() bool {
		log := e.stderr.String()
		return strings.Contains(log, `msg="Reading Steam's registry failed"`) && strings.Contains(log, "err=")
	})
	if err := os.Rename(aside, h.Home.DBPath()); err != nil {
		t.Fatal(err)
	}
	if _, body = get(t, base+"/metrics"); !strings.Contains(body, "steam_exporter_scrape_success 1") {
		t.Error("the exporter did not recover when steam.db came back")
	}

	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := e.exitCode(t); code != 0 {
		t.Errorf("exit code after SIGTERM %d, want 0; log:\n%s", code, e.stderr.String())
	}
	if log := e.stderr.String(); !strings.Contains(log, `msg="Starting steam-overseer exporter"`) {
		t.Errorf("no start line in the log:\n%s", log)
	}
}

// TestExporterProcfs: the exporter measures processes under --path.procfs,
// here a fixture in which the recorded PID is the deployment's java.
func TestExporterProcfs(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	fixture := h.FakeProcess(d, 4242) // a PID in the fixture only
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startExporter(t, "--steam.home="+h.Home.Dir, "--web.listen-address="+addr, "--path.procfs="+fixture)
	testkit.Eventually(t, 10*time.Second, "the exporter to listen", func() bool {
		select {
		case <-e.done:
			t.Fatalf("the exporter exited; log:\n%s", e.stderr.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	_, body := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`steam_deployment_up{deployment="churn",deployment_id="%d"} 1`, d.ID),
		fmt.Sprintf(`steam_deployment_cpu_seconds_total{deployment="churn",deployment_id="%d",mode="user"} 2.5`, d.ID),
		fmt.Sprintf(`steam_deployment_cpu_seconds_total{deployment="churn",deployment_id="%d",mode="system"} 0.5`, d.ID),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestExporterFailsToStart(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name    string
		args    []string
		wantLog string
	}{
		{
			name:    "port taken",
			args:    []string{"--steam.home=" + h.Home.Dir, "--web.listen-address=" + taken.Addr().String()},
			wantLog: "address already in use",
		},
		{
			name:    "Steam home missing",
			args:    []string{"--steam.home=" + filepath.Join(t.TempDir(), "nope"), "--web.listen-address=127.0.0.1:0"},
			wantLog: "no such file or directory",
		},
		{
			name:    "procfs missing",
			args:    []string{"--steam.home=" + h.Home.Dir, "--path.procfs=" + filepath.Join(t.TempDir(), "noproc"), "--web.listen-address=127.0.0.1:0"},
			wantLog: "noproc",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startExporter(t, tc.args...)
			if code := e.exitCode(t); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if log := e.stderr.String(); !isFailureSentence(lastLine(log), tc.wantLog) {
				t.Errorf("stderr does not say %q in a plain sentence:\n%s", tc.wantLog, log)
			}
		})
	}
}

// TestExporterBusyTimeout: a scrape may wait for Steam's lock and then for
// the state database's (5 s); together they must end before Prometheus's
// default 10 s scrape timeout, or a locked database fails the whole scrape
// instead of reporting steam_exporter_scrape_success 0.
func TestExporterBusyTimeout(t *testing.T) {
	t.Parallel()
	const stateBusyTimeout, prometheusScrapeTimeout = 5 * time.Second, 10 * time.Second
	r := exporterRegistry(steam.Home{Dir: t.TempDir()})
	if r.BusyTimeout <= 0 || r.BusyTimeout+stateBusyTimeout >= prometheusScrapeTimeout {
		t.Errorf("the exporter waits up to %s for Steam's lock: with the state database's %s, a scrape may outlast %s",
			r.BusyTimeout, stateBusyTimeout, prometheusScrapeTimeout)
	}
	if d := steam.NewRegistry(steam.Home{}).BusyTimeout; d != steam.DefaultBusyTimeout {
		t.Errorf("other callers' registry waits %s, want the default %s", d, steam.DefaultBusyTimeout)
	}
}
