package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// JettyStartTimeout bounds a JVM's start in tests: about 2 s on an idle
// 2-core machine, many times that when a dozen start at once.
const JettyStartTimeout = 60 * time.Second

var jettyKit struct {
	once sync.Once
	kit  *jetty.Kit
	err  error
}

// JettyKit compiles the real jetty-runner.jar and scoring wars (package
// jetty) once per test binary, into a temp folder that outlives every test.
func JettyKit(t testing.TB) *jetty.Kit {
	t.Helper()
	jettyKit.once.Do(func() {
		dir, err := os.MkdirTemp("", "steam-overseer-jetty-")
		if err != nil {
			jettyKit.err = err
			return
		}
		jettyKit.kit, jettyKit.err = jetty.Build(dir)
	})
	if jettyKit.err != nil {
		t.Fatal(jettyKit.err)
	}
	return jettyKit.kit
}

// NewJettyHome is a Home whose jetty-runner.jar is the real one and
// whose Java is the real java: deployments added with AddJetty and started
// with StartJetty (or by a remediator) run real Jetty.
func NewJettyHome(t testing.TB, opts ...Options) *Home {
	t.Helper()
	k := JettyKit(t)
	h := NewHome(t, opts...)
	if err := k.Install(h.Home); err != nil {
		t.Fatal(err)
	}
	h.Java = k.Java
	return h
}

// JettyEnv is the environment for the javas started in h, by the test or by a
// remediator it runs: the JVM's temp folder, where Jetty unpacks each war and
// which a killed JVM leaves behind, is inside h's folder and goes with it.
// Steam's argv stays as it is: the JVM reads JAVA_TOOL_OPTIONS from its
// environment (and says so on stderr).
func JettyEnv(t testing.TB, h *Home) []string {
	t.Helper()
	env, err := jetty.Env(filepath.Join(h.Home.Dir, "jvm-tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return append(env, h.JavaEnv...)
}

// AddJetty adds a deployment to h whose war is a real scoring war behaving as w.
func AddJetty(t testing.TB, h *Home, s Spec, w jetty.War) steam.Deployment {
	t.Helper()
	d := h.Add(s)
	if d.War == "" {
		t.Fatalf("deployment %s has no war (%s)", d.Name, d.Problem)
	}
	if err := JettyKit(t).WriteWar(d.War, w); err != nil {
		t.Fatal(err)
	}
	return d
}

// JettyProcess is a deployment's java started by a test.
type JettyProcess struct {
	*os.Process
	out    *Buffer
	exited chan struct{}
	state  *os.ProcessState
}

// ExitCode waits up to timeout for the JVM to exit and returns its code.
func (p *JettyProcess) ExitCode(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.state.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("java %d still runs after %s:\n%s", p.Pid, timeout, p.Output())
		return 0
	}
}

// Output is what the JVM printed so far (stdout and stderr).
func (p *JettyProcess) Output() string { return p.out.String() }

// WaitOutput waits until the JVM has printed s.
func (p *JettyProcess) WaitOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("java %d to print %q", p.Pid, s), func() bool {
		return strings.Contains(p.Output(), s)
	})
}

// LaunchJetty starts d's java with Steam's exact argv, in its own process group
// and with default signal dispositions (as Steam's Go exec leaves them: a
// java started from a shell in the background would ignore SIGINT), without
// waiting for it. It is killed at the end of the test.
func LaunchJetty(t testing.TB, h *Home, d steam.Deployment) *JettyProcess {
	t.Helper()
	cmd := h.Command(h.Java, d)
	cmd.Env = JettyEnv(t, h)
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting deployment %s: %v", d.Name, err)
	}
	p := &JettyProcess{Process: cmd.Process, out: out, exited: make(chan struct{})}
	// Waited for in the background, so that a killed JVM is gone (not a
	// zombie) as soon as it dies.
	go func() { _ = cmd.Wait(); p.state = cmd.ProcessState; close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// StartJetty starts d as Steam does: launches it, waits until it answers /ping
// and records its PID in the row (compare-and-set on d.PID).
func StartJetty(t testing.TB, h *Home, d steam.Deployment) *JettyProcess {
	t.Helper()
	p := LaunchJetty(t, h, d)
	p.Record(t, h, d)
	return p
}

// Record waits until the launched java of d answers /ping and records its
// PID in the row (compare-and-set on d.PID), as Steam does once a
// deployment is up.
func (p *JettyProcess) Record(t testing.TB, h *Home, d steam.Deployment) {
	t.Helper()
	if err := steamfixture.WaitReady(context.Background(), int(d.Port), JettyStartTimeout); err != nil {
		t.Fatalf("deployment %s: %v\n%s", d.Name, err, p.Output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := steam.NewRegistry(h.Home).SetPID(ctx, d.ID, d.PID, int64(p.Pid)); err != nil {
		t.Fatalf("recording the PID of %s: %v", d.Name, err)
	}
}

// RunJetty adds a deployment behaving as w, starts it, and returns it re-read
// with its PID.
func RunJetty(t testing.TB, h *Home, s Spec, w jetty.War) (steam.Deployment, *JettyProcess) {
	t.Helper()
	d := AddJetty(t, h, s, w)
	p := StartJetty(t, h, d)
	return h.Deployment(d.ID), p
}
