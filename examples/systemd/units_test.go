// Package systemd holds example unit files; its test checks them with
// systemd's own verifier and against the binary's real flags.
package systemd_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/testkit"
)

const installedBinary = "/usr/local/bin/steam-overseer"

var units = []string{
	"steam-overseer-exporter.service",
	"steam-overseer-exporter.socket",
	"steam-overseer-remediator.service",
	"steam-overseer-backup.service",
	"steam-overseer-backup.timer",
}

// directives reads a unit file's Key=Value lines, all values of each key in
// order.
func directives(t *testing.T, unit string) map[string][]string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a directive: %q", unit, line)
		}
		d[k] = append(d[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUnitsVerify(t *testing.T) {
	analyze := testkit.RequireTool(t, "systemd-analyze")
	bin := testkit.Binary(t)
	// verify insists that ExecStart's program exists: point the units at
	// the binary just built.
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), installedBinary, bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitsExecStart runs every ExecStart of the services with --help, the
// environment file's variables substituted: a flag the binary does not know
// fails kingpin's parse before the help is printed.
func TestUnitsExecStart(t *testing.T) {
	env := directives(t, "steam-overseer.default")
	bin := testkit.Binary(t)
	varRef := regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		t.Run(u, func(t *testing.T) {
			d := directives(t, u)
			if got := d["EnvironmentFile"]; !slices.Equal(got, []string{"/etc/default/steam-overseer"}) {
				t.Errorf("EnvironmentFile=%v, want /etc/default/steam-overseer", got)
			}
			execStart := d["ExecStart"]
			if len(execStart) != 1 {
				t.Fatalf("%d ExecStart lines, want 1", len(execStart))
			}
			var args []string
			for _, word := range strings.Fields(execStart[0]) {
				missing := ""
				word = varRef.ReplaceAllStringFunc(word, func(ref string) string {
					m := varRef.FindStringSubmatch(ref)
					name := m[1] + m[2]
					v, ok := env[name]
					if !ok {
						missing = name
						return ""
					}
					return strings.Trim(v[len(v)-1], `"`)
				})
				if missing != "" {
					t.Errorf("ExecStart uses $%s, which /etc/default/steam-overseer does not set", missing)
				}
				if word != "" {
					args = append(args, word)
				}
			}
			if args[0] != installedBinary {
				t.Fatalf("ExecStart runs %s, want %s", args[0], installedBinary)
			}
			cmd := exec.Command(bin, append(args[1:], "--help")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s --help: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestRemediatorKeepsDeployments pins the settings without which stopping or
// restarting the remediator, or one deployment's OOM kill, would take down
// the deployments it started (they live in its cgroup), and the hardening
// the JVMs it starts are proven to run under (TestJVMUnderRemediatorFilter).
func TestRemediatorKeepsDeployments(t *testing.T) {
	d := directives(t, "steam-overseer-remediator.service")
	for _, tc := range []struct{ key, want string }{
		{"KillMode", "process"},
		{"OOMPolicy", "continue"},
		{"TasksMax", "infinity"},
		{"SystemCallFilter", "@system-service"},
		{"SystemCallErrorNumber", "EPERM"},
		{"UMask", "0027"},
	} {
		if got := d[tc.key]; !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s=%v, want %s", tc.key, got, tc.want)
		}
	}
	for _, key := range []string{"PrivateTmp", "MemoryDenyWriteExecute", "MemoryMax", "ProtectProc"} {
		if v, ok := d[key]; ok && !slices.Equal(v, []string{"no"}) {
			t.Errorf("%s=%v would break the JVMs the remediator starts", key, v)
		}
	}
}

// TestJVMUnderRemediatorFilter starts a real JVM (the java on PATH, OpenJDK
// here) serving HTTP under the remediator unit's own SystemCallFilter= and
// SystemCallErrorNumber=, loaded through libseccomp as systemd loads it
// (testdata/syscall-filter; no systemd instance is needed), and expects it
// to answer GET /ping: JIT compiler, garbage collector, threads and epoll
// all within the filter. A control call outside the filter (swapon) must
// fail with EPERM, proving the filter is really in force.
func TestJVMUnderRemediatorFilter(t *testing.T) {
	testkit.RequireTool(t, "systemd-analyze")
	java := testkit.RequireTool(t, "java")
	// Debian's python3, whose python3-seccomp is libseccomp's own binding
	// (a python3 of pyenv or a virtualenv earlier on PATH lacks it).
	python := "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import seccomp").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import seccomp (apt-get install python3-seccomp): %v\n%s", python, err, out)
	}
	d := directives(t, "steam-overseer-remediator.service")
	filter, errno := strings.Join(d["SystemCallFilter"], " "), strings.Join(d["SystemCallErrorNumber"], "")
	if filter == "" || errno == "" {
		t.Fatalf("the remediator has SystemCallFilter=%q SystemCallErrorNumber=%q", filter, errno)
	}
	wrapper, err := filepath.Abs(filepath.Join("testdata", "syscall-filter"))
	if err != nil {
		t.Fatal(err)
	}
	filtered := func(args ...string) *exec.Cmd {
		return exec.Command(python, append([]string{wrapper, filter, errno}, args...)...)
	}

	swapon := `import ctypes; libc = ctypes.CDLL(None, use_errno=True); libc.syscall(167, b"/nonexistent", 0); print(ctypes.get_errno())`
	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		want string
	}{
		{"without the filter", exec.Command(python, "-c", swapon), "2"}, // ENOENT
		{"under the filter", filtered(python, "-c", swapon), "1"},       // EPERM
	} {
		out, err := tc.cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Fatalf("swapon %s: errno %q (%v), want %s", tc.name, got, err, tc.want)
		}
	}

	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	source, err := filepath.Abs(filepath.Join("testdata", "Ping.java"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "java.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	log := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := filtered(java, "-XX:+UseG1GC", source, strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/ping", port)
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the JVM exited under the filter: %v\n%s", err, log())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: HTTP %d", url, resp.StatusCode)
			}
			t.Logf("a JVM under SystemCallFilter=%s answers %s", filter, url)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the JVM did not answer %s within 90s:\n%s", url, log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestExporterSocketActivation serves the built exporter on a socket handed
// over as steam-overseer-exporter.socket hands it (systemd's own
// systemd-socket-activate passes it in LISTEN_FDS), with the flags of the
// unit, and scrapes it.
func TestExporterSocketActivation(t *testing.T) {
	activate := testkit.RequireTool(t, "systemd-socket-activate")
	bin := testkit.Binary(t)
	service, socket := directives(t, "steam-overseer-exporter.service"), directives(t, "steam-overseer-exporter.socket")
	if got := socket["ListenStream"]; !slices.Equal(got, []string{"9732"}) {
		t.Errorf("the socket listens on %v, want the exporter's default port 9732", got)
	}
	if !strings.Contains(strings.Join(service["ExecStart"], " "), "--web.systemd-socket") {
		t.Fatalf("the exporter's ExecStart %q does not take its socket from systemd", service["ExecStart"])
	}
	for _, key := range []string{"Requires", "After"} {
		if !strings.Contains(strings.Join(service[key], " "), "steam-overseer-exporter.socket") {
			t.Errorf("the exporter service's %s= %v lacks its socket", key, service[key])
		}
	}
	h := testkit.NewHome(t)
	h.Run(testkit.Spec{Name: "churn-gbm", LogicalName: "churn-gbm"})
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(activate, "-l", fmt.Sprintf("127.0.0.1:%d", port),
		bin, "exporter", "--web.systemd-socket", "--steam.home="+h.Home.Dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Reap(t, cmd)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	var body string
	testkit.Eventually(t, 20*time.Second, "the socket-activated exporter to serve /metrics", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if !strings.Contains(body, `steam_deployment_up{deployment="churn-gbm"`) {
		t.Errorf("the socket-activated exporter does not report the deployment:\n%s", body)
	}
}
