// Package testkit gives tests a real Steam home and real deployments: a
// temp folder with Steam's schema (steamfixture), the fake scoring service
// built and installed under the name "java", and cleanup that kills every
// process a test started.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// builds holds the programs tests build, once per test binary each.
var builds sync.Map // package path → *build

type build struct {
	once sync.Once
	path string
	err  error
}

// buildOnce builds the main package pkg (relative to the repository root)
// into a temp folder as name, once per test binary, and returns its path.
func buildOnce(t testing.TB, pkg, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "steam-overseer-build-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RepoRoot is the repository's top folder, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// Java builds the fake scoring service and returns the path of the
// executable, named "java".
func Java(t testing.TB) string {
	t.Helper()
	return buildOnce(t, "./testdata/fakejava", "java")
}

// Binary builds steam-overseer itself, for tests that run its commands as
// the real processes they are in production.
func Binary(t testing.TB) string {
	t.Helper()
	return buildOnce(t, "./cmd/steam-overseer", "steam-overseer")
}

// The demo's Steam home builder, under the names tests use.
type (
	Spec      = steamfixture.Spec
	Options   = steamfixture.Options
	Behaviour = fakescorer.Behaviour
)

// FreePort returns a TCP port nothing listens on now.
func FreePort() (int, error) { return steamfixture.FreePort() }

// Test packages run side by side, each walking ports from its own random
// start: where two walks meet, the reservations keep one port to one test.
// Set in the environment, they cover the demos and tests' children too.
func init() {
	if os.Getenv(steamfixture.ReservationsEnv) != "" {
		return
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("steam-overseer-test-ports-%d.lock", os.Getuid()))
	if err := os.Setenv(steamfixture.ReservationsEnv, path); err != nil {
		panic(err)
	}
}

// LoopbackAddr returns 127.0.0.1 and a port nothing listens on now.
func LoopbackAddr(t testing.TB) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// WaitReady waits until a scoring service on port answers /ping 200.
func WaitReady(ctx context.Context, port int, timeout time.Duration) error {
	return steamfixture.WaitReady(ctx, port, timeout)
}

// Home is a Steam home in a test's temp dir.
type Home struct {
	*steamfixture.Fixture
	t    testing.TB
	Java string
	// JavaEnv is added to the environment of the javas started after it is
	// set: t.Setenv would keep the test from running in parallel.
	JavaEnv []string
}

// NewHome builds a Steam home for t; everything it starts is killed when the
// test ends.
func NewHome(t testing.TB, opts ...Options) *Home {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	f, err := steamfixture.Create(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := &Home{Fixture: f, t: t, Java: Java(t)}
	// Registered first, so it runs last: after the test's remediators are
	// gone, whatever they started is killed too.
	t.Cleanup(h.KillJavas)
	return h
}

// KillJavas SIGKILLs every process verified to be the java of one of h's
// deployments, whoever started it, and waits until they are gone (not just
// zombies: a killed process's threads may hold its port a moment longer).
// Only processes whose command line names h's own temp jetty-runner.jar can
// match, so nothing outside the test is touched.
func (h *Home) KillJavas() {
	ds, err := steam.NewRegistry(h.Home).Deployments(context.Background())
	if err != nil {
		h.t.Logf("listing deployments to clean up: %v", err)
		return
	}
	in, err := procid.NewInspector("")
	if err != nil {
		h.t.Logf("cleaning up: %v", err)
		return
	}
	var pids []int
	for _, d := range ds {
		identity, ok := d.Identity()
		if !ok {
			continue
		}
		found, err := in.Find(identity)
		if err != nil {
			h.t.Logf("finding processes to clean up: %v", err)
		}
		for _, p := range found {
			if in.Signal(p, identity, syscall.SIGKILL) == nil {
				pids = append(pids, p.PID)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Add adds a deployment (see Spec); its process_id stays 0.
func (h *Home) Add(s Spec) steam.Deployment {
	h.t.Helper()
	d, err := h.Fixture.Add(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// Start starts d as Steam does, waits for /ping, records the PID in the row
// and returns the process, which is killed at the end of the test.
func (h *Home) Start(d steam.Deployment) *os.Process {
	h.t.Helper()
	cmd, err := h.Fixture.Start(h.Java, d, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	Reap(h.t, cmd)
	return cmd.Process
}

// Run adds and starts a normal deployment, returning it re-read with its PID.
func (h *Home) Run(s Spec) (steam.Deployment, *os.Process) {
	h.t.Helper()
	d := h.Add(s)
	p := h.Start(d)
	return h.Deployment(d.ID), p
}

// Deployment re-reads a deployment from the registry.
func (h *Home) Deployment(id int64) steam.Deployment {
	h.t.Helper()
	d, err := steam.NewRegistry(h.Home).Deployment(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// Exec runs SQL against steam.db, as Steam or an operator would.
func (h *Home) Exec(query string, args ...any) {
	h.t.Helper()
	if _, err := h.DB.Exec(query, args...); err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
}

// Reap makes sure cmd's process is killed and waited for when the test ends.
// It waits in the background, so a test that kills the process sees it gone
// (not a zombie) as soon as it dies.
func Reap(t testing.TB, cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}

// Kill SIGKILLs p and waits until its PID no longer exists (it is reaped by
// Reap's waiter).
func Kill(t testing.TB, p *os.Process) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Fatalf("killing %d: %v", p.Pid, err)
	}
	Eventually(t, 5*time.Second, "process to be gone", func() bool {
		return syscall.Kill(p.Pid, 0) != nil
	})
}

// Alive reports whether pid exists and is not a zombie, whatever it runs.
// It reads /proc itself rather than through the code under test.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || pid <= 0 {
		return false
	}
	// The state follows the command name, which may hold ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// Eventually polls cond every 10 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyEvery(t, timeout, 10*time.Millisecond, what, func() (bool, string) { return cond(), "" })
}

// EventuallyEvery polls cond every interval until it holds, failing the
// test with cond's last word after timeout.
func EventuallyEvery(t testing.TB, timeout, every time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if detail != "" {
				t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, detail)
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(every)
	}
}

// StartForeign starts a process that is not a deployment (sleep), killed at
// the end of the test: the owner of a reused PID.
func StartForeign(t testing.TB, args ...string) *os.Process {
	t.Helper()
	if len(args) == 0 {
		args = []string{"sleep", "600"}
	}
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	Reap(t, cmd)
	return cmd.Process
}

// RequireTool returns the path of a program the test runs for real
// (prometheus, promtool, amtool, systemd-analyze...). Under -short the test
// is skipped, for a quick loop without Debian's packages; otherwise a
// missing program fails it: a skipped check passes what nobody checked.
// ./scripts/test and .ci/run install them from Debian's packages.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s, left out under -short", name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): install Debian's prometheus, prometheus-alertmanager and systemd "+
			"packages (apt-get install prometheus prometheus-alertmanager systemd), as ./scripts/test does", name, err)
	}
	return path
}

// FakeProcess records pid, which need not exist, as d's process and
// returns a procfs tree (for --path.procfs) in which pid is d's java, copied
// from testdata/proc/4242: asleep, 3 s of CPU, 2560 resident pages.
func (h *Home) FakeProcess(d steam.Deployment, pid int) string {
	t := h.t
	t.Helper()
	h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, pid, d.ID)
	src := filepath.Join(RepoRoot(), "testdata", "proc")
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"stat": "stat", "uptime": "uptime"}
	for _, name := range []string{"stat", "statm", "status"} {
		files[filepath.Join("4242", name)] = filepath.Join(strconv.Itoa(pid), name)
	}
	for from, to := range files {
		b, err := os.ReadFile(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("4242"), []byte(strconv.Itoa(pid)))
		if err := os.WriteFile(filepath.Join(root, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmdline := strings.Join(h.Command(h.Java, d).Args, "\x00") + "\x00"
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// Freeze SIGSTOPs p, a live process that answers nothing, and waits until
// every thread is stopped (the kernel stops a multi-threaded process
// thread by thread). It is continued again when the test ends.
func Freeze(t testing.TB, p *os.Process) {
	t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("stopping %d: %v", p.Pid, err)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) })
	Eventually(t, 5*time.Second, fmt.Sprintf("process %d to be stopped", p.Pid), func() bool {
		return threadsStopped(p.Pid)
	})
}

// threadsStopped reports whether every thread of pid is in state T.
func threadsStopped(pid int) bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Buffer is a bytes.Buffer that a process's output copier (or a logger) and
// the test may use at once.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// HoldWriteLock holds steam.db's write lock with BEGIN EXCLUSIVE, as a long
// Steam transaction would; release, also called when the test ends, rolls
// it back.
func (h *Home) HoldWriteLock() (release func()) {
	h.t.Helper()
	l := h.HoldLock(Exclusive)
	return func() {
		if err := l.Release(); err != nil {
			h.t.Errorf("releasing steam.db's write lock: %v", err)
		}
	}
}

// HoldLock begins a transaction in mode on a connection of its own to
// steam.db, rolled back when the test ends unless ended before.
func (h *Home) HoldLock(mode LockMode) *WriteLock {
	h.t.Helper()
	l, err := TakeWriteLock(context.Background(), h.DB, mode)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = l.Release() })
	return l
}

// StartsLogged counts the remediator's starts of deployment id: the header
// line it writes into the deployment's log before each exec.
func StartsLogged(t testing.TB, h *Home, id int64) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Home.LogDir(), fmt.Sprintf("deployment-%d.log", id)))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("steam-overseer remediator: starting deployment "))
}
