// Package demo runs the whole loop on one machine without Steam: a
// throwaway Steam home, three deployments (this binary linked as "java", or
// real Jetty), the exporter and remediator, and, when Debian's prometheus and
// alertmanager are installed, the shipped rules and route, healing a kill
// through the exporter's exit watch. It stops all it started, deployments
// only after verifying them.
package demo

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/steam-overseer/steam-overseer/dashboards"
	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/promstack"
	"github.com/steam-overseer/steam-overseer/internal/status"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Healers: what brings a killed deployment back.
const (
	// HealerAuto picks HealerAlertmanager when both programs are installed.
	HealerAuto         = "auto"
	HealerAlertmanager = "alertmanager"
	HealerReconcile    = "reconcile"
)

// Config is how the demo runs.
type Config struct {
	// Exe is run as the exporter, the remediator and (as java) the deployments.
	Exe string
	// Command is shown in the hints: under `go run`, Exe is deleted at the end.
	Command string
	// Listen addresses; the deployments' ports are picked free.
	ExporterAddr, RemediatorAddr, PrometheusAddr, AlertmanagerAddr string
	Healer                                                         string
	// Jetty runs real Jetty 9.4 instead of the built-in fake scorer.
	Jetty bool
	Keep  bool
	// Out receives what a person reads: the URLs, the deployments, events.
	Out    io.Writer
	Logger *slog.Logger
}

// Timings of the demo's loop: seconds, not production's minutes.
const (
	interval          = time.Second // scrapes, rule evaluation, health polling
	holdFactor        = 30          // the rules' holds, 30 times shorter: SteamDeploymentUnresponsive's 2m becomes 4s
	reconcileInterval = 2 * time.Second
	stopGrace         = 10 * time.Second
	// Shorter than production's 2m: a demo deployment is seconds old when stopped.
	probeStartGrace = 5 * time.Second
	probeTimeout    = 500 * time.Millisecond
	hungAfter       = 2 * time.Second
	// The demo has no Steam stop for the exit watch to wait out.
	exitSettle = 300 * time.Millisecond
	groupWait  = 300 * time.Millisecond
	// Three JVMs starting at once on a busy machine.
	deploymentStartTimeout = 60 * time.Second
)

var deployments = []string{"churn-gbm", "fraud-drf", "upsell-glm"}

// Run runs the demo until ctx ends, then stops everything it started.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	healer, err := pickHealer(cfg.Healer)
	if err != nil {
		return err
	}
	if cfg.Jetty {
		if err := jetty.Check(); err != nil {
			return fmt.Errorf("--jetty: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "steam-overseer-demo-")
	if err != nil {
		return fmt.Errorf("creating the demo's Steam home: %w", err)
	}
	r := &run{cfg: cfg, dir: dir, out: cfg.Out}
	defer func() {
		if cerr := r.cleanup(); err == nil {
			err = cerr
		}
	}()
	if err := r.buildHome(ctx); err != nil {
		return err
	}
	if err := r.startServices(ctx, healer); err != nil {
		return err
	}
	defer r.sendTraffic(ctx)()
	r.printIntro(healer)
	r.watch(ctx)
	return nil
}

func pickHealer(h string) (string, error) {
	switch h {
	case HealerAlertmanager, HealerReconcile:
		return h, nil
	case HealerAuto, "":
		for _, bin := range []string{"prometheus", "prometheus-alertmanager"} {
			if _, err := exec.LookPath(bin); err != nil {
				return HealerReconcile, nil
			}
		}
		return HealerAlertmanager, nil
	}
	return "", fmt.Errorf("unknown healer %q: want auto, alertmanager or reconcile", h)
}

type run struct {
	cfg     Config
	dir     string // everything the demo writes lives here
	out     io.Writer
	fixture *steamfixture.Fixture
	java    string
	// env is nil (this process's) unless the deployments are real JVMs.
	env  []string
	deps []steam.Deployment
	// children are stopped in reverse order of start.
	mu       sync.Mutex
	children []*child
	urls     [][2]string
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *run) home() steam.Home { return steam.Home{Dir: filepath.Join(r.dir, "steam")} }

func (r *run) buildHome(ctx context.Context) error {
	home := r.home()
	if err := os.MkdirAll(home.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the demo's Steam home: %w", err)
	}
	f, err := steamfixture.Create(home.Dir, steamfixture.Options{})
	if err != nil {
		return err
	}
	r.fixture = f
	var kit *jetty.Kit
	var pids []int
	if r.cfg.Jetty {
		if kit, err = r.buildJetty(); err != nil {
			return err
		}
	} else if err := r.linkFakeJava(); err != nil {
		return err
	}
	for _, name := range deployments {
		d, err := f.Add(steamfixture.Spec{Name: name, LogicalName: name,
			Behaviour: fakescorer.Behaviour{ReadyAfter: 300 * time.Millisecond}})
		if err != nil {
			return err
		}
		if kit != nil {
			if err := kit.WriteWar(d.War, jetty.War{}); err != nil {
				return err
			}
		}
		pid, err := r.launch(d)
		if err != nil {
			return err
		}
		r.deps = append(r.deps, d)
		pids = append(pids, pid)
	}
	for i, d := range r.deps {
		if err := steamfixture.WaitReady(ctx, int(d.Port), deploymentStartTimeout); err != nil {
			return fmt.Errorf("starting deployment %s: %w; the end of its log:\n%s", d.Name, err,
				logTail(r.deploymentLog(d), 10))
		}
		if err := r.recordPID(ctx, d, pids[i]); err != nil {
			return err
		}
		if r.deps[i], err = steam.NewRegistry(home).Deployment(ctx, d.ID); err != nil {
			return err
		}
	}
	return nil
}

// FakeJavaName is the link the demo makes to this binary in its bin folder;
// FakeJava serves the java arguments Steam gives it as a fake scoring service.
const FakeJavaName = "java"

func FakeJava(javaArgs []string) int { return fakescorer.Main(javaArgs) }

// linkFakeJava: Steam finds its JVM on PATH as "java".
func (r *run) linkFakeJava() error {
	binDir := filepath.Join(r.dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("creating the demo's bin folder: %w", err)
	}
	r.java = filepath.Join(binDir, FakeJavaName)
	if err := os.Symlink(r.cfg.Exe, r.java); err != nil {
		return fmt.Errorf("linking the fake java: %w", err)
	}
	return nil
}

// buildJetty: every java of the demo unpacks its war inside the folder.
func (r *run) buildJetty() (*jetty.Kit, error) {
	fmt.Fprintf(r.out, "Compiling jetty-runner.jar and the scoring war with javac...\n")
	kit, err := jetty.Build(filepath.Join(r.dir, "jetty"))
	if err != nil {
		return nil, err
	}
	if err := kit.Install(r.home()); err != nil {
		return nil, err
	}
	r.java = kit.Java
	r.env, err = jetty.Env(filepath.Join(r.dir, "jvm-tmp"))
	return kit, err
}

func (r *run) deploymentLog(d steam.Deployment) string {
	return filepath.Join(r.home().LogDir(), fmt.Sprintf("deployment-%d.log", d.ID))
}

func (r *run) launch(d steam.Deployment) (int, error) {
	log, err := os.OpenFile(r.deploymentLog(d), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("opening the log of %s: %w", d.Name, err)
	}
	defer log.Close()
	cmd := r.fixture.Command(r.java, d)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting deployment %s: %w", d.Name, err)
	}
	r.adopt("deployment "+d.Name, cmd)
	return cmd.Process.Pid, nil
}

// recordPID compare-and-sets on the PID the row held when d was read.
func (r *run) recordPID(ctx context.Context, d steam.Deployment, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := steam.NewRegistry(r.home()).SetPID(ctx, d.ID, d.PID, int64(pid)); err != nil {
		return fmt.Errorf("recording the PID of %s: %w", d.Name, err)
	}
	return nil
}

// adopt reaps cmd as soon as it exits: no killed deployment lingers as a zombie.
func (r *run) adopt(name string, cmd *exec.Cmd) {
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	r.mu.Lock()
	r.children = append(r.children, c)
	r.mu.Unlock()
}

// start puts the program in its own process group: Ctrl-C reaches only the
// demo, which stops everything in order.
func (r *run) start(name string, args ...string) error {
	logPath := filepath.Join(r.dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	defer log.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	r.adopt(name, cmd)
	return nil
}

func (r *run) startServices(ctx context.Context, healer string) error {
	home := r.home()
	exporter := []string{r.cfg.Exe, "exporter", "--steam.home=" + home.Dir,
		"--web.listen-address=" + r.cfg.ExporterAddr, "--probe.interval=" + interval.String(),
		"--probe.timeout=" + probeTimeout.String(), "--probe.start-grace=" + probeStartGrace.String()}
	if healer == HealerAlertmanager {
		exporter = append(exporter, "--alertmanager.url=http://"+r.cfg.AlertmanagerAddr,
			"--alertmanager.label=instance="+hostport(r.cfg.ExporterAddr), "--alertmanager.settle="+exitSettle.String())
	}
	if err := r.start("exporter", exporter...); err != nil {
		return err
	}
	remediator := []string{r.cfg.Exe, "remediator", "--steam.home=" + home.Dir,
		"--web.listen-address=" + r.cfg.RemediatorAddr, "--java.path=" + r.java,
		"--remediate.start-timeout=20s", "--probe.timeout=" + probeTimeout.String(),
		"--probe.start-grace=" + probeStartGrace.String(), "--remediate.hung-after=" + hungAfter.String()}
	exporterURL := "http://" + hostport(r.cfg.ExporterAddr)
	remediatorURL := "http://" + hostport(r.cfg.RemediatorAddr)
	r.urls = append(r.urls, [2]string{"Exporter", exporterURL + "/metrics"},
		[2]string{"Remediator", remediatorURL + "/metrics"})
	var waitFor []string
	switch healer {
	case HealerReconcile:
		remediator = append(remediator, "--reconcile.interval="+reconcileInterval.String())
		if err := r.start("remediator", remediator...); err != nil {
			return err
		}
	case HealerAlertmanager:
		token := filepath.Join(r.dir, "webhook-token")
		if err := writeToken(token); err != nil {
			return err
		}
		remediator = append(remediator, "--webhook.bearer-token-file="+token)
		if err := r.start("remediator", remediator...); err != nil {
			return err
		}
		if err := r.startPrometheusStack(token); err != nil {
			return err
		}
		waitFor = append(waitFor, "http://"+r.cfg.PrometheusAddr+"/-/ready", "http://"+r.cfg.AlertmanagerAddr+"/-/ready")
	}
	waitFor = append(waitFor, exporterURL+"/metrics", remediatorURL+"/-/ready")
	for _, u := range waitFor {
		if err := r.waitOK(ctx, u, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// startPrometheusStack runs the shipped files; only addresses, intervals
// and hold times change.
func (r *run) startPrometheusStack(token string) error {
	rules, err := dashboards.ShortenHolds(dashboards.AlertRules, holdFactor)
	if err != nil {
		return err
	}
	promConfig, err := dashboards.AdaptPrometheusConfig(dashboards.PrometheusConfig, dashboards.PrometheusOverrides{
		ExporterAddr: hostport(r.cfg.ExporterAddr), RemediatorAddr: r.cfg.RemediatorAddr,
		AlertmanagerAddr: r.cfg.AlertmanagerAddr, Interval: interval,
	})
	if err != nil {
		return err
	}
	amConfig, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, dashboards.AlertmanagerOverrides{
		RemediatorURL:   "http://" + r.cfg.RemediatorAddr + "/webhook",
		CredentialsFile: token,
		// The shipped receiver mails; here it hits the remediator's 404 page.
		OperatorsURL:   "http://" + r.cfg.RemediatorAddr + "/operators",
		GroupWait:      groupWait,
		GroupInterval:  2 * time.Second,
		RepeatInterval: 20 * time.Second,
	})
	if err != nil {
		return err
	}
	stackDir := filepath.Join(r.dir, "prometheus")
	am, err := promstack.Alertmanager("prometheus-alertmanager", promstack.Instance{
		Dir: stackDir, Addr: r.cfg.AlertmanagerAddr, Config: amConfig})
	if err != nil {
		return err
	}
	if err := r.start("alertmanager", am...); err != nil {
		return err
	}
	prom, err := promstack.Prometheus("prometheus", promstack.Instance{
		Dir: stackDir, Addr: r.cfg.PrometheusAddr, Config: promConfig,
		Files: map[string][]byte{"alerts.yml": rules}})
	if err != nil {
		return err
	}
	if err := r.start("prometheus", prom...); err != nil {
		return err
	}
	r.urls = append(r.urls, [2]string{"Prometheus", "http://" + r.cfg.PrometheusAddr + "/alerts"},
		[2]string{"Alertmanager", "http://" + r.cfg.AlertmanagerAddr})
	return nil
}

func writeToken(path string) error {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("making the webhook token: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the webhook token: %w", err)
	}
	return nil
}

func hostport(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// waitOK polls url until it answers 200, failing early when one of the
// demo's programs has exited (a port already taken, say).
func (r *run) waitOK(ctx context.Context, url string, timeout time.Duration) error {
	return promstack.WaitReady(ctx, url, timeout, func() error {
		if c := r.exited(); c != nil {
			return fmt.Errorf("%s exited (%v); the end of its log:\n%s", c.name, c.cmd.ProcessState,
				logTail(filepath.Join(r.dir, c.name+".log"), 10))
		}
		return nil
	})
}

func (r *run) exited() *child {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.children {
		select {
		case <-c.done:
			if filepath.Base(c.cmd.Path) != "java" {
				return c
			}
		default:
		}
	}
	return nil
}

func (r *run) printIntro(healer string) {
	fmt.Fprintf(r.out, "steam-overseer demo\n\n")
	tw := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Steam home:\t%s\n", r.home().Dir)
	if r.cfg.Jetty {
		fmt.Fprintf(tw, "  Deployments run:\treal Jetty 9.4 (Debian's libjetty9-java) under %s\n", r.java)
	} else {
		fmt.Fprintf(tw, "  Deployments run:\tthe built-in fake scoring service (this binary as java; --jetty for real Jetty)\n")
	}
	for _, u := range r.urls {
		fmt.Fprintf(tw, "  %s:\t%s\n", u[0], u[1])
	}
	switch healer {
	case HealerAlertmanager:
		fmt.Fprintf(tw, "  Healing:\tthe exporter's exit watch sends SteamDeploymentExited the moment a java exits; Prometheus fires SteamDeploymentDown (the backstop) or SteamDeploymentUnresponsive (holds shortened %dx); Alertmanager calls the remediator's webhook\n",
			holdFactor)
	default:
		fmt.Fprintf(tw, "  Healing:\tthe remediator's reconcile sweep every %s (install prometheus and prometheus-alertmanager for the real loop)\n",
			reconcileInterval)
	}
	tw.Flush()
	fmt.Fprintf(r.out, "\nDeployments:\n")
	tw = tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  ID\tNAME\tPORT\tPID\tPREDICT\n")
	for _, d := range r.deps {
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\thttp://127.0.0.1:%d/predict\n", d.ID, d.Name, d.Port, d.PID, d.Port)
	}
	tw.Flush()
	fmt.Fprintf(r.out, "\nKill one and watch it come back:  kill -9 %d\n", r.deps[0].PID)
	if healer == HealerAlertmanager {
		// Only an alert says a live java is hung: the reconcile sweep
		// restarts what is down, never what is alive.
		fmt.Fprintf(r.out, "Hang one (alive, answering nothing) and watch it come back:  kill -STOP %d\n", r.deps[1].PID)
	}
	command := r.cfg.Command
	if command == "" {
		command = r.cfg.Exe
	}
	fmt.Fprintf(r.out, "Look at it as an operator would:  %s status --steam.home=%s\n", command, r.home().Dir)
	fmt.Fprintf(r.out, "Ctrl-C stops everything the demo started.\n\n")
}

// watch reports each deployment going down and coming back, as status sees them.
func (r *run) watch(ctx context.Context) {
	registry := steam.NewRegistry(r.home())
	in, err := procid.NewInspector("")
	if err != nil {
		r.cfg.Logger.Error("Cannot read processes; not reporting events", "err", err)
		<-ctx.Done()
		return
	}
	type trouble struct {
		since  time.Time
		status string
	}
	down := map[int64]trouble{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rows, err := status.Rows(ctx, registry, in, time.Now())
		if err != nil {
			continue
		}
		status.AddProbes(ctx, rows, probe.DefaultPath, probeTimeout)
		if ctx.Err() != nil {
			return // the probes were cut short, not failed
		}
		for _, row := range rows {
			was, isDown := down[row.ID]
			switch {
			case row.Status == string(procid.StatusRunning) && isDown:
				delete(down, row.ID)
				fmt.Fprintf(r.out, "%s  %s (id %d) is back: PID %d, serving again %s after it went down\n",
					clock(), row.Name, row.ID, row.PID, time.Since(was.since).Round(100*time.Millisecond))
			case row.Status == string(procid.StatusRunning) || (isDown && was.status == row.Status):
			case row.Status == status.StatusUnresponsive:
				down[row.ID] = trouble{since: cmp.Or(was.since, time.Now()), status: row.Status}
				fmt.Fprintf(r.out, "%s  %s (id %d) is unresponsive: PID %d is alive but does not answer (%s)\n",
					clock(), row.Name, row.ID, row.PID, row.Probe.Error)
			default:
				down[row.ID] = trouble{since: cmp.Or(was.since, time.Now()), status: row.Status}
				fmt.Fprintf(r.out, "%s  %s (id %d) is down: PID %d is %s\n", clock(), row.Name, row.ID, row.PID, row.Status)
			}
		}
	}
}

func clock() string { return time.Now().Format("15:04:05") }

func (r *run) cleanup() error {
	var errs []error
	r.mu.Lock()
	children := r.children
	r.mu.Unlock()
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		if filepath.Base(c.cmd.Path) == "java" {
			continue // deployments are stopped below, by identity
		}
		if err := stop(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.stopDeployments(); err != nil {
		errs = append(errs, err)
	}
	for _, c := range children {
		<-c.done
	}
	if r.fixture != nil {
		r.fixture.Close()
	}
	if r.cfg.Keep {
		fmt.Fprintf(r.out, "Kept the demo's Steam home: %s\n", r.home().Dir)
	} else if err := os.RemoveAll(r.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing the demo's files: %w", err))
	} else {
		fmt.Fprintf(r.out, "Stopped everything the demo started and removed %s\n", r.dir)
	}
	return errors.Join(errs...)
}

// stop holds the process, so no PID can have been reused.
func stop(c *child) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(stopGrace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s and was killed", c.name, stopGrace)
	}
}

// stopDeployments: SIGINT, as Steam stops one, then SIGKILL for the rest.
func (r *run) stopDeployments() error {
	in, err := procid.NewInspector("")
	if err != nil {
		return fmt.Errorf("stopping deployments: %w", err)
	}
	type verified struct {
		id procid.Identity
		procid.Process
	}
	find := func() []verified {
		var all []verified
		for _, d := range r.deps {
			if id, ok := d.Identity(); ok {
				found, _ := in.Find(id)
				for _, p := range found {
					all = append(all, verified{id, p})
				}
			}
		}
		return all
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		procs := find()
		if len(procs) == 0 {
			return nil
		}
		for _, p := range procs {
			_ = in.Signal(p.Process, p.id, sig)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(find()) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if left := find(); len(left) > 0 {
		return fmt.Errorf("deployments still running after SIGKILL: %v", left)
	}
	return nil
}

func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
