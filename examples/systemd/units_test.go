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

	"github.com/steam-overseer/steam-overseer/testkit"
)

const installedBinary = "/usr/local/bin/steam-overseer"

// units are the templates; each instance is one Steam home, its path
// escaped (systemd-escape --path), which the units read as %f.
var units = []string{
	"steam-overseer@.target",
	"steam-overseer-exporter@.service",
	"steam-overseer-exporter@.socket",
	"steam-overseer-remediator@.service",
	"steam-overseer-backup@.service",
	"steam-overseer-backup@.timer",
	"steam-overseer-logrotate@.service",
	"steam-overseer-logrotate@.timer",
}

// instance is the name of unit's instance for the Steam home dir, as
// `systemd-escape --template=unit --path dir` writes it.
func instance(t *testing.T, unit, dir string) string {
	t.Helper()
	out, err := exec.Command(testkit.RequireTool(t, "systemd-escape"), "--template="+unit, "--path", dir).Output()
	if err != nil {
		t.Fatalf("systemd-escape --path %s: %v", dir, err)
	}
	return strings.TrimSpace(string(out))
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

// TestUnitsVerify has systemd's verifier read every unit instantiated for
// a Steam home that is not the default one, with a space and a dash in its
// path that the escaping must carry through to %f.
func TestUnitsVerify(t *testing.T) {
	analyze := testkit.RequireTool(t, "systemd-analyze")
	bin := testkit.Binary(t)
	home := filepath.Join(t.TempDir(), "steam 1.1.6-linux")
	if err := os.MkdirAll(filepath.Join(home, "var", "master", "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	// verify insists that ExecStart's program exists: point the units at
	// the binary just built.
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, u), []byte(strings.ReplaceAll(string(b), installedBinary, bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(dir, instance(t, u, home)))
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitsHoldNoHome: where Steam lives is said once, in the instance
// name; a path to a home in a unit would be a second place to change.
func TestUnitsHoldNoHome(t *testing.T) {
	for _, u := range units {
		for key, values := range directives(t, u) {
			for _, v := range values {
				if strings.Contains(v, "/home/") || strings.Contains(v, "steam-1.") ||
					(strings.Contains(v, "var/master") && !strings.Contains(v, "%f/var/master")) {
					t.Errorf("%s: %s=%s names a Steam home instead of %%f", u, key, v)
				}
			}
		}
	}
	b, err := os.ReadFile("steam-overseer.default")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := directives(t, "steam-overseer.default")["STEAM_HOME"]; ok {
		t.Errorf("steam-overseer.default sets STEAM_HOME, which the units' --steam.home=%%f would override")
	}
	if !strings.Contains(string(b), "systemd-escape --template=steam-overseer@.target --path") {
		t.Errorf("steam-overseer.default does not say how a Steam home is chosen")
	}
}

// TestTargetEnablesEveryUnit enables one Steam home's target as the README
// says, with the real systemctl on a root of the test's own (no running
// systemd needed), and expects every part enabled for that home and
// nothing else; disabling it must leave nothing behind.
func TestTargetEnablesEveryUnit(t *testing.T) {
	systemctl := testkit.RequireTool(t, "systemctl")
	root := t.TempDir()
	lib := filepath.Join(root, "lib", "systemd", "system")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lib, u), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := "/srv/steam-2/home"
	target := instance(t, "steam-overseer@.target", home)
	if out, err := exec.Command(systemctl, "--root="+root, "enable", target).CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable %s: %v\n%s", target, err, out)
	}
	etc := filepath.Join(root, "etc", "systemd", "system")
	links := func() []string {
		var got []string
		_ = filepath.WalkDir(etc, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type()&os.ModeSymlink != 0 {
				rel, _ := filepath.Rel(etc, p)
				got = append(got, rel)
			}
			return nil
		})
		slices.Sort(got)
		return got
	}
	want := []string{"multi-user.target.wants/" + target}
	for _, u := range units {
		if strings.HasSuffix(u, ".target") || u == "steam-overseer-backup@.service" || u == "steam-overseer-logrotate@.service" {
			continue // started by their timers
		}
		want = append(want, target+".wants/"+instance(t, u, home))
	}
	slices.Sort(want)
	if got := links(); !slices.Equal(got, want) {
		t.Errorf("enabling %s made links\n%s\nwant\n%s", target, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out, err := exec.Command(systemctl, "--root="+root, "disable", target).CombinedOutput(); err != nil {
		t.Fatalf("systemctl disable %s: %v\n%s", target, err, out)
	}
	if got := links(); len(got) > 0 {
		t.Errorf("disabling %s left links %v", target, got)
	}
}

// TestUnitsExecStart runs every ExecStart of the services with --help, the
// environment file's variables and a home for %f substituted: a flag the binary does not know
// fails kingpin's parse before the help is printed.
func TestUnitsExecStart(t *testing.T) {
	env := directives(t, "steam-overseer.default")
	bin := testkit.Binary(t)
	home := t.TempDir()
	varRef := regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") || strings.HasPrefix(u, "steam-overseer-logrotate") {
			continue // logrotate's own unit runs logrotate
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
			for _, word := range strings.Fields(strings.ReplaceAll(execStart[0], "%f", home)) {
				// systemd splits a lone unbraced $VAR at whitespace.
				split := strings.HasPrefix(word, "$") && !strings.HasPrefix(word, "${")
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
				if split {
					args = append(args, strings.Fields(word)...)
				} else if word != "" {
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
	d := directives(t, "steam-overseer-remediator@.service")
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
	d := directives(t, "steam-overseer-remediator@.service")
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
// over as steam-overseer-exporter@.socket hands it (systemd's own
// systemd-socket-activate passes it in LISTEN_FDS), with the flags of the
// unit, and scrapes it.
func TestExporterSocketActivation(t *testing.T) {
	activate := testkit.RequireTool(t, "systemd-socket-activate")
	bin := testkit.Binary(t)
	service, socket := directives(t, "steam-overseer-exporter@.service"), directives(t, "steam-overseer-exporter@.socket")
	if got := socket["ListenStream"]; !slices.Equal(got, []string{"9732"}) {
		t.Errorf("the socket listens on %v, want the exporter's default port 9732", got)
	}
	if !strings.Contains(strings.Join(service["ExecStart"], " "), "--web.systemd-socket") {
		t.Fatalf("the exporter's ExecStart %q does not take its socket from systemd", service["ExecStart"])
	}
	for _, key := range []string{"Requires", "After"} {
		if !strings.Contains(strings.Join(service[key], " "), "steam-overseer-exporter@%i.socket") {
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
