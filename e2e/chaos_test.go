package e2e

// TestChaos is the chaos run: two simulated Steam hosts (two homes, each
// with its own exporter and remediator), one Prometheus scraping both, two
// Alertmanagers clustered on loopback, deployments on real Jetty, and faults
// injected at random moments: deployments SIGKILLed and SIGSTOPped (one and
// two at once), a remediator and an Alertmanager SIGKILLed and restarted,
// steam.db's write lock held as Steam holds it while deploying, a foreign
// process's PID planted in a row, and a reboot of one host. Every 500 ms it
// counts each deployment's javas (more than one is a duplicate) and checks
// that no foreign process was signalled. It ends with a report and fails
// on any unhealed fault, duplicate, foreign signal or damaged database.
//
// The test suite runs it for 90 s; scripts/chaos runs it for 10 minutes
// (see docs/chaos.md).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	mathrand "math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/steam-overseer/steam-overseer/dashboards"
	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/internal/exitwatch"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/promstack"
	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/remediate"
	"github.com/steam-overseer/steam-overseer/testkit"
)

var (
	chaosDuration    = flag.Duration("chaos.duration", 90*time.Second, "how long the chaos run injects faults")
	chaosInterval    = flag.Duration("chaos.interval", 9*time.Second, "mean time between two faults of the chaos run")
	chaosDeployments = flag.Int("chaos.deployments", 20, "deployments of the chaos run, shared by its two hosts")
	chaosSeed        = flag.Int64("chaos.seed", 0, "seed of the chaos run's choices (0: from the clock)")
	chaosReport      = flag.String("chaos.report", "", "also write the chaos run's report to this file")
)

// Settings of the run. The watch window is shortened and a healed
// deployment rests before it is faulted again, so that the run measures
// healing, not the backoff a crash loop rightly gets.
const (
	chaosWatch          = 5 * time.Second
	chaosRest           = chaosWatch + 5*time.Second
	chaosHealTimeout    = 3 * time.Minute
	chaosSampleEvery    = 500 * time.Millisecond
	chaosConcurrency    = 4 // the remediators' --remediate.concurrency, the default
	chaosLockHold       = 3 * time.Second
	chaosAMOutage       = 10 * time.Second
	chaosRemediatorDown = 3 * time.Second
	chaosHungAfter      = 3 * time.Second // the remediators' --remediate.hung-after
	chaosProbeTimeout   = 500 * time.Millisecond
)

// Fault kinds, in the order of the report.
const (
	faultKill         = "kill"
	faultStop         = "sigstop"
	faultDouble       = "two_at_once"
	faultDBLock       = "kill_under_db_lock"
	faultForeign      = "kill_foreign_pid_planted"
	faultRemediator   = "kill_remediator_restarted"
	faultHungCheck    = "sigstop_remediator_killed_mid_check"
	faultAlertmanager = "kill_alertmanager_restarted"
	faultReboot       = "host_reboot"
)

var faultKinds = []string{faultKill, faultStop, faultDouble, faultDBLock, faultForeign, faultRemediator,
	faultHungCheck, faultAlertmanager, faultReboot}

type chaosHost struct {
	name                         string
	home                         *testkit.Home
	deployments                  []*chaosDeployment
	exporterAddr, remediatorAddr string
	exporter, remediator         *service
	remediatorDown               sync.Mutex // held from a remediator's kill to its restart
}

type chaosDeployment struct {
	host     *chaosHost
	d        steam.Deployment
	identity procid.Identity
	// Guarded by chaosRun.mu.
	busy   bool
	rested time.Time // when it may be faulted again
	faults int
}

type chaosFault struct {
	kind    string
	at      time.Time
	targets []*chaosDeployment
	oldPIDs []int
	// Set by its watcher.
	healed       time.Time
	duringOutage bool
}

// foreign is an unrelated process whose PID is planted in a row: nothing
// may signal it.
type foreign struct {
	pid    int
	exited chan struct{}
	state  *os.ProcessState
}

type chaosRun struct {
	t         *testing.T
	rng       *mathrand.Rand
	hosts     []*chaosHost
	ams       []*service
	inspector *procid.Inspector
	watchers  sync.WaitGroup // fault watchers and pending restarts

	mu         sync.Mutex
	faults     []*chaosFault
	outages    [][2]time.Time // Alertmanager outages; the end is zero while one lasts
	duplicates []string
	foreigns   []*foreign
	peakRSS    map[string]int64 // by role: exporter, remediator
	reboot     *chaosFault
	rebootPeak int // most javas of the rebooted host starting at once
	skipped    int
	lockHolds  int
	jvmStart   []time.Duration
}

func TestChaos(t *testing.T) {
	t.Parallel()
	prometheusBin := testkit.RequireTool(t, "prometheus")
	alertmanagerBin := testkit.RequireTool(t, "prometheus-alertmanager")
	bin := testkit.Binary(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	c := &chaosRun{t: t, rng: mathrand.New(mathrand.NewSource(seed)), peakRSS: map[string]int64{}}
	t.Logf("chaos run: %s of faults every ~%s, %d deployments, seed %d", *chaosDuration, *chaosInterval,
		*chaosDeployments, seed)
	var err error
	if c.inspector, err = procid.NewInspector(""); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()

	addr := func() string { return testkit.LoopbackAddr(t) }
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeFile(t, filepath.Join(dir, "webhook-token"), []byte(hex.EncodeToString(token)+"\n"))

	// Two hosts, their deployments started as Steam starts them, a few at
	// a time as Steam's UI would.
	for i, name := range []string{"steam1", "steam2"} {
		hst := &chaosHost{name: name, home: testkit.NewJettyHome(t), exporterAddr: addr(), remediatorAddr: addr()}
		c.hosts = append(c.hosts, hst)
		n := *chaosDeployments / 2
		if i == 0 {
			n = *chaosDeployments - n
		}
		for j := 0; j < n; j++ {
			dname := fmt.Sprintf("%s-model%02d", name, j+1)
			d := testkit.AddJetty(t, hst.home, testkit.Spec{Name: dname, LogicalName: strings.ReplaceAll(dname, "-", "_")},
				jetty.War{})
			identity, ok := d.Identity()
			if !ok {
				t.Fatalf("deployment %s has no identity: %s", d.Name, d.Problem)
			}
			hst.deployments = append(hst.deployments, &chaosDeployment{host: hst, d: d, identity: identity})
		}
	}
	var all []*chaosDeployment
	for _, hst := range c.hosts {
		all = append(all, hst.deployments...)
	}
	for i := 0; i < len(all); i += chaosConcurrency {
		batch := all[i:min(i+chaosConcurrency, len(all))]
		launched := time.Now()
		var ps []*testkit.JettyProcess
		for _, cd := range batch {
			ps = append(ps, testkit.LaunchJetty(t, cd.host.home, cd.d))
		}
		for j, cd := range batch {
			ps[j].Record(t, cd.host.home, cd.d)
			c.jvmStart = append(c.jvmStart, time.Since(launched))
			cd.d = cd.host.home.Deployment(cd.d.ID)
		}
	}
	t.Logf("%d deployments on real Jetty; JVM start (exec → /ping 200, %d at once): p50 %s", len(all),
		chaosConcurrency, percentile(c.jvmStart, 50))

	// Each host's exporter, its exit watch on as the Debian default file
	// turns it on and telling both Alertmanagers, and remediator; the
	// remediator acts only on alerts about its own host's exporter.
	amAddrs := []string{addr(), addr()}
	for _, hst := range c.hosts {
		env := testkit.JettyEnv(t, hst.home)
		hst.exporter = start(t, dir, hst.name+"-exporter", env, append([]string{bin, "exporter", "--steam.home=" + hst.home.Home.Dir,
			"--web.listen-address=" + hst.exporterAddr, "--alertmanager.url=http://" + amAddrs[1],
			"--probe.interval=1s", "--probe.timeout=" + chaosProbeTimeout.String(), "--probe.start-grace=5s"},
			shippedExporterArgs(t, amAddrs[0], hst.exporterAddr)...)...)
		hst.remediator = start(t, dir, hst.name+"-remediator", env, bin, "remediator",
			"--steam.home="+hst.home.Home.Dir, "--web.listen-address="+hst.remediatorAddr,
			"--webhook.bearer-token-file="+tokenFile, "--webhook.match=instance="+hst.exporterAddr,
			"--remediate.start-timeout=60s", "--remediate.watch-after-ready="+chaosWatch.String(),
			fmt.Sprintf("--remediate.concurrency=%d", chaosConcurrency), "--java.path="+hst.home.Java,
			"--probe.timeout="+chaosProbeTimeout.String(), "--probe.start-grace=5s", "--remediate.hung-after="+chaosHungAfter.String())
	}

	// Two Alertmanagers in one cluster, each told of the other; both get
	// every alert from Prometheus and both notify both remediators' webhook.
	// The shipped group_wait (0s to the remediator); the other timers short.
	amConfig, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, dashboards.AlertmanagerOverrides{
		RemediatorURL: "http://" + c.hosts[0].remediatorAddr + "/webhook", CredentialsFile: tokenFile,
		OperatorsURL: "http://127.0.0.1:1/", GroupInterval: 2 * time.Second, RepeatInterval: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	amConfig = addRemediator(t, amConfig, "http://"+c.hosts[1].remediatorAddr+"/webhook")
	clusterAddrs := []string{addr(), addr()}
	for i := range amAddrs {
		args, err := promstack.Alertmanager(alertmanagerBin, promstack.Instance{
			Dir: filepath.Join(dir, fmt.Sprintf("alertmanager%d", i+1)), Addr: amAddrs[i], Config: amConfig,
			Gossip: clusterAddrs[i], Peers: []string{clusterAddrs[1-i]}})
		if err != nil {
			t.Fatal(err)
		}
		c.ams = append(c.ams, start(t, dir, fmt.Sprintf("alertmanager%d", i+1), nil, args...))
	}

	// One Prometheus for both hosts, with the shipped rules and
	// configuration, both exporters and remediators as targets.
	promConfig, rules := prometheusConfig(t, dashboards.PrometheusOverrides{
		ExporterAddr:     c.hosts[0].exporterAddr,
		RemediatorAddr:   c.hosts[0].remediatorAddr,
		AlertmanagerAddr: amAddrs[0],
	})
	promConfig = []byte(strings.NewReplacer(
		quote(c.hosts[0].exporterAddr), quote(c.hosts[0].exporterAddr)+", "+quote(c.hosts[1].exporterAddr),
		quote(c.hosts[0].remediatorAddr), quote(c.hosts[0].remediatorAddr)+", "+quote(c.hosts[1].remediatorAddr),
		quote(amAddrs[0]), quote(amAddrs[0])+", "+quote(amAddrs[1]),
	).Replace(string(promConfig)))
	prometheusAddr := addr()
	promArgs, err := promstack.Prometheus(prometheusBin, promstack.Instance{
		Dir: filepath.Join(dir, "prometheus"), Addr: prometheusAddr, Config: promConfig,
		Files: map[string][]byte{"alerts.yml": rules}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir, "prometheus", nil, promArgs...)

	ready := []string{"http://" + prometheusAddr + "/-/ready"}
	for _, hst := range c.hosts {
		ready = append(ready, "http://"+hst.exporterAddr+"/metrics", "http://"+hst.remediatorAddr+"/-/ready")
	}
	for _, a := range amAddrs {
		ready = append(ready, "http://"+a+"/-/ready")
	}
	waitOK(t, ready...)
	prom := promAPI{base: "http://" + prometheusAddr}
	prom.waitUp(t, len(all), 2*len(c.hosts))
	eventually(t, 60*time.Second, "the Alertmanager cluster to form", func() (bool, string) {
		var body struct {
			Cluster struct {
				Peers []any `json:"peers"`
			} `json:"cluster"`
		}
		err := getJSON("http://"+amAddrs[0]+"/api/v2/status", &body)
		return len(body.Cluster.Peers) == 2, fmt.Sprint(len(body.Cluster.Peers), " peers ", err)
	})

	// The run.
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { c.sample(stopSampling); close(sampled) }()
	began := time.Now()
	c.inject(began.Add(*chaosDuration), amAddrs)
	t.Logf("faults injected for %s; waiting for the last ones to heal", time.Since(began).Round(time.Second))
	c.watchers.Wait()
	// A last look at the foreign processes and duplicates after the end.
	time.Sleep(2 * chaosSampleEvery)
	close(stopSampling)
	<-sampled

	var gaveUp float64
	for _, hst := range c.hosts {
		gaveUp += metricSum(t, "http://"+hst.remediatorAddr+"/metrics", "steam_remediator_deployment_gave_up", "", "")
		for _, s := range []*service{hst.exporter, hst.remediator} {
			c.recordRSS(s, "VmHWM:")
		}
	}
	dbs := map[string]string{} // label → path
	for _, hst := range c.hosts {
		dbs[hst.name+"/steam.db"] = hst.home.Home.DBPath()
		dbs[hst.name+"/steam-overseer.db"] = filepath.Join(filepath.Dir(hst.home.Home.DBPath()), "steam-overseer.db")
	}
	c.report(seed, gaveUp, dbs, rules)
}

// inject runs faults at random moments until end, each kind in turn (the
// reboot once), the others in a random order every round.
func (c *chaosRun) inject(end time.Time, amAddrs []string) {
	var order []string
	rebooted := false
	for time.Now().Before(end) {
		gap := time.Duration(float64(*chaosInterval) * (0.5 + c.rng.Float64()))
		if time.Until(end) < gap {
			return
		}
		time.Sleep(gap)
		if len(order) == 0 {
			for _, i := range c.rng.Perm(len(faultKinds)) {
				if faultKinds[i] != faultReboot || !rebooted {
					order = append(order, faultKinds[i])
				}
			}
		}
		kind := order[0]
		order = order[1:]
		if kind == faultReboot {
			rebooted = true
		}
		if !c.injectOne(kind, amAddrs) {
			c.mu.Lock()
			c.skipped++
			c.mu.Unlock()
		}
	}
}

// injectOne injects one fault of kind; false when no deployment was free
// for it.
func (c *chaosRun) injectOne(kind string, amAddrs []string) bool {
	t := c.t
	switch kind {
	case faultKill:
		return c.signal(kind, nil, 1, syscall.SIGKILL) != nil
	case faultStop:
		return c.signal(kind, nil, 1, syscall.SIGSTOP) != nil
	case faultDouble:
		return c.signal(kind, nil, 2, syscall.SIGKILL) != nil
	case faultDBLock:
		// Steam holds the write lock while it deploys; the remediator's
		// compare-and-set has to wait it out.
		hst := c.hosts[c.rng.Intn(len(c.hosts))]
		locked := make(chan error, 1)
		go func() { locked <- c.holdWriteLock(hst, chaosLockHold) }()
		time.Sleep(500 * time.Millisecond)
		f := c.signal(kind, hst, 1, syscall.SIGKILL)
		if err := <-locked; err != nil {
			t.Errorf("holding steam.db's write lock: %v", err)
		}
		return f != nil
	case faultForeign:
		hst := c.hosts[c.rng.Intn(len(c.hosts))]
		f := c.signal(kind, hst, 1, syscall.SIGKILL)
		if f == nil {
			return false
		}
		c.plantForeign(f.targets[0])
		return true
	case faultRemediator:
		hst := c.hosts[c.rng.Intn(len(c.hosts))]
		hst.remediatorDown.Lock()
		hst.remediator.kill()
		f := c.signal(kind, hst, 1, syscall.SIGKILL)
		c.watchers.Add(1) // the run ends after the restart
		time.AfterFunc(chaosRemediatorDown, func() {
			defer c.watchers.Done()
			c.restartRemediator(hst)
		})
		return f != nil
	case faultHungCheck:
		// Killed while it verifies the hang, the remediator must resume the
		// check at its restart, not wait for Alertmanager's repeat.
		hst := c.hosts[c.rng.Intn(len(c.hosts))]
		f := c.signal(kind, hst, 1, syscall.SIGSTOP)
		if f == nil {
			return false
		}
		c.watchers.Add(1)
		go func() {
			defer c.watchers.Done()
			if !c.waitInFlight(hst, f.targets[0].d.ID, chaosHealTimeout) {
				t.Errorf("%s never began remediating %s", hst.remediator.name, f.targets[0].d.Name)
				return
			}
			hst.remediatorDown.Lock()
			hst.remediator.kill()
			time.Sleep(chaosRemediatorDown)
			c.restartRemediator(hst)
		}()
		return true
	case faultAlertmanager:
		i := c.rng.Intn(len(c.ams))
		c.mu.Lock()
		c.outages = append(c.outages, [2]time.Time{time.Now()})
		outage := len(c.outages) - 1
		c.mu.Unlock()
		c.ams[i].kill()
		f := c.signal(kind, nil, 1, syscall.SIGKILL)
		c.watchers.Add(1)
		time.AfterFunc(chaosAMOutage, func() {
			defer c.watchers.Done()
			if err := c.ams[i].start(); err != nil {
				t.Errorf("restarting %s: %v", c.ams[i].name, err)
			}
			deadline := time.Now().Add(time.Minute)
			for code, _ := httpGet("http://" + amAddrs[i] + "/-/ready"); code != http.StatusOK && time.Now().Before(deadline); code, _ = httpGet("http://" + amAddrs[i] + "/-/ready") {
				time.Sleep(100 * time.Millisecond)
			}
			c.mu.Lock()
			c.outages[outage][1] = time.Now()
			c.mu.Unlock()
		})
		return f != nil
	case faultReboot:
		return c.rebootHost(c.hosts[len(c.hosts)-1])
	}
	t.Fatalf("unknown fault %s", kind)
	return false
}

func (c *chaosRun) restartRemediator(hst *chaosHost) {
	defer hst.remediatorDown.Unlock()
	if err := hst.remediator.start(); err != nil {
		c.t.Errorf("restarting %s: %v", hst.remediator.name, err)
	}
}

// waitInFlight waits until hst's remediator has noted a remediation of the
// deployment under way in its state database.
func (c *chaosRun) waitInFlight(hst *chaosHost, id int64, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		db, err := state.OpenReadOnly(hst.home.Home.StatePath())
		if err != nil {
			continue
		}
		inFlight, err := db.InFlight(context.Background())
		db.Close()
		if _, ok := inFlight[id]; err == nil && ok {
			return true
		}
	}
	return false
}

// pick reserves n free deployments (of hst, or of any host), the least
// faulted first; nil when there are not enough.
func (c *chaosRun) pick(hst *chaosHost, n int) []*chaosDeployment {
	c.mu.Lock()
	defer c.mu.Unlock()
	var free []*chaosDeployment
	for _, h := range c.hosts {
		if hst != nil && h != hst {
			continue
		}
		for _, cd := range h.deployments {
			if !cd.busy && time.Now().After(cd.rested) {
				free = append(free, cd)
			}
		}
	}
	if len(free) < n {
		return nil
	}
	c.rng.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	sort.SliceStable(free, func(i, j int) bool { return free[i].faults < free[j].faults })
	free = free[:n]
	for _, cd := range free {
		cd.busy = true
		cd.faults++
	}
	return free
}

// signal sends sig to the verified java of n free deployments and watches
// them heal; nil when none was free.
func (c *chaosRun) signal(kind string, hst *chaosHost, n int, sig syscall.Signal) *chaosFault {
	targets := c.pick(hst, n)
	if targets == nil {
		return nil
	}
	f := &chaosFault{kind: kind, targets: targets, at: time.Now()}
	for _, cd := range targets {
		f.oldPIDs = append(f.oldPIDs, c.signalJavas(cd, sig)...)
	}
	c.watch(f)
	return f
}

// signalJavas sends sig to every verified java of cd, returning their PIDs.
func (c *chaosRun) signalJavas(cd *chaosDeployment, sig syscall.Signal) []int {
	found, err := c.inspector.Find(cd.identity)
	if err != nil {
		c.t.Errorf("finding the java of %s: %v", cd.d.Name, err)
	}
	var pids []int
	for _, p := range found {
		if err := c.inspector.Signal(p, cd.identity, sig); err != nil {
			c.t.Logf("sending %s to %s's java %d: %v", sig, cd.d.Name, p.PID, err)
			continue
		}
		pids = append(pids, p.PID)
	}
	return pids
}

// watch follows f until every target serves /ping under a new PID that
// Steam's row records and that is the deployment's running java.
func (c *chaosRun) watch(f *chaosFault) {
	c.mu.Lock()
	c.faults = append(c.faults, f)
	c.mu.Unlock()
	c.watchers.Add(1)
	go func() {
		defer c.watchers.Done()
		pending := slices.Clone(f.targets)
		deadline := f.at.Add(chaosHealTimeout)
		for len(pending) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			pending = slices.DeleteFunc(pending, func(cd *chaosDeployment) bool { return c.serves(cd, f.oldPIDs) })
		}
		now := time.Now()
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(pending) == 0 {
			f.healed = now
		}
		for _, o := range c.outages {
			if o[0].Before(now) && (o[1].IsZero() || o[1].After(f.at)) {
				f.duringOutage = true
			}
		}
		for _, cd := range f.targets {
			cd.busy = false
			cd.rested = now.Add(chaosRest)
		}
	}()
}

var pingClient = &http.Client{Timeout: 400 * time.Millisecond}

// serves says whether cd answers /ping and its row holds a PID, none of
// old, that is its running java.
func (c *chaosRun) serves(cd *chaosDeployment, old []int) bool {
	resp, err := pingClient.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", cd.d.Port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := steam.NewRegistry(cd.host.home.Home).Deployment(ctx, cd.d.ID)
	if err != nil || slices.Contains(old, int(d.PID)) {
		return false
	}
	return c.inspector.Inspect(int(d.PID), cd.identity).Status == procid.StatusRunning
}

// holdWriteLock holds steam.db's write lock for hold, as Steam does while it
// deploys, in its rollback journal: no schema, journal mode or row changes.
func (c *chaosRun) holdWriteLock(hst *chaosHost, hold time.Duration) error {
	db, err := sqlitefile.Open(hst.home.Home.DBPath(), sqlitefile.Options{Mode: sqlitefile.ReadWrite, BusyTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	lock, err := testkit.TakeWriteLock(context.Background(), db, testkit.Immediate)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.lockHolds++
	c.mu.Unlock()
	time.Sleep(hold)
	return lock.Commit()
}

// plantForeign starts an unrelated process and writes its PID into cd's
// row, as a reboot that handed the PID to another program leaves it.
func (c *chaosRun) plantForeign(cd *chaosDeployment) {
	cmd := exec.Command("sleep", "86400")
	if err := cmd.Start(); err != nil {
		c.t.Errorf("starting a foreign process: %v", err)
		return
	}
	fp := &foreign{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); fp.state = cmd.ProcessState; close(fp.exited) }()
	c.t.Cleanup(func() { _ = cmd.Process.Kill(); <-fp.exited })
	c.mu.Lock()
	c.foreigns = append(c.foreigns, fp)
	c.mu.Unlock()
	var err error
	for try := 0; try < 20; try++ { // a remediator may write the row at the same moment
		if err = cd.host.home.SetPID(cd.d.ID, fp.pid); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Errorf("planting PID %d in %s's row: %v", fp.pid, cd.d.Name, err)
}

// rebootHost simulates hst's reboot once its deployments are free: every
// java SIGKILLed at once, two of their rows left holding PIDs of unrelated
// processes.
func (c *chaosRun) rebootHost(hst *chaosHost) bool {
	var targets []*chaosDeployment
	for deadline := time.Now().Add(2 * time.Minute); targets == nil && time.Now().Before(deadline); {
		if targets = c.pick(hst, len(hst.deployments)); targets == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if targets == nil {
		return false
	}
	f := &chaosFault{kind: faultReboot, targets: targets, at: time.Now()}
	for _, cd := range targets {
		f.oldPIDs = append(f.oldPIDs, c.signalJavas(cd, syscall.SIGKILL)...)
	}
	for _, cd := range targets[:2] {
		c.plantForeign(cd)
	}
	c.mu.Lock()
	c.reboot = f
	c.mu.Unlock()
	c.watch(f)
	return true
}

// sample looks every chaosSampleEvery at every deployment's javas, the
// foreign processes and the steam-overseer processes' memory.
func (c *chaosRun) sample(stop <-chan struct{}) {
	tick := time.NewTicker(chaosSampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		javas := javasByWar()
		c.mu.Lock()
		reboot := c.reboot
		rebooting := reboot != nil && reboot.healed.IsZero()
		c.mu.Unlock()
		for _, hst := range c.hosts {
			starting := 0
			for _, cd := range hst.deployments {
				pids := javas[cd.d.War]
				if len(pids) > 1 {
					c.mu.Lock()
					c.duplicates = append(c.duplicates, fmt.Sprintf("%s %s: javas %v",
						time.Now().Format(time.TimeOnly), cd.d.Name, pids))
					c.mu.Unlock()
				}
				if rebooting && slices.Contains(reboot.targets, cd) {
					starting += c.startingJavas(cd, pids)
				}
			}
			c.mu.Lock()
			c.rebootPeak = max(c.rebootPeak, starting)
			c.mu.Unlock()
			for _, s := range []*service{hst.exporter, hst.remediator} {
				c.recordRSS(s, "VmRSS:")
			}
		}
	}
}

// startingJavas counts cd's javas that do not serve yet: not the PID its
// row records once a start is done.
func (c *chaosRun) startingJavas(cd *chaosDeployment, pids []int) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	d, err := steam.NewRegistry(cd.host.home.Home).Deployment(ctx, cd.d.ID)
	if err != nil {
		return 0
	}
	n := 0
	for _, pid := range pids {
		if pid != int(d.PID) {
			n++
		}
	}
	return n
}

// recordRSS keeps the largest value of field (VmRSS:, VmHWM:) of s's
// /proc/PID/status, by role.
func (c *chaosRun) recordRSS(s *service, field string) {
	pid := s.pid()
	if pid == 0 {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			role := s.name[strings.LastIndexByte(s.name, '-')+1:]
			c.mu.Lock()
			c.peakRSS[role] = max(c.peakRSS[role], kb*1024)
			c.mu.Unlock()
		}
	}
}

// javasByWar lists the live (not zombie) java processes started as Steam
// starts deployments, by their war: read from /proc directly, not through
// the code under test.
func javasByWar() map[string][]int {
	out := map[string][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		i := slices.Index(args, "-jar")
		if i < 0 || i+1 >= len(args) || !strings.HasSuffix(args[i+1], "/jetty-runner.jar") || !testkit.Alive(pid) {
			continue
		}
		war := args[len(args)-1]
		out[war] = append(out[war], pid)
	}
	return out
}

// report writes the run's figures and fails the test on any unhealed
// fault, duplicate, foreign signal or damaged database.
func (c *chaosRun) report(seed int64, gaveUp float64, dbs map[string]string, rules []byte) {
	t := c.t
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	hold, _ := holdOf(t, rules, "SteamDeploymentDown")
	// Its hold is in its expression, not its for: (dashboards.ExpressionHolds).
	hangHold := dashboards.ExpressionHolds["SteamDeploymentUnresponsive"] / holdFactor
	p("steam-overseer chaos run: %s of faults (mean gap %s), %d deployments on real Jetty across %d hosts, seed %d",
		*chaosDuration, *chaosInterval, *chaosDeployments, len(c.hosts), seed)
	p("settings: exporters' exit watch on (shipped settle %s), scrape and evaluation %s, SteamDeploymentDown held %s, group_wait 0s, 2 Alertmanagers (peer timeout 15s), watch window %s, remediate.concurrency %d",
		exitwatch.DefaultSettle, interval, hold, chaosWatch, chaosConcurrency)
	p("JVM start (exec → /ping 200, %d at once): p50 %s, max %s", chaosConcurrency, percentile(c.jvmStart, 50), percentile(c.jvmStart, 100))
	jvm := percentile(c.jvmStart, 50)
	killBound := (exitwatch.DefaultSettle + jvm + 2*time.Second).Round(100 * time.Millisecond)
	p("expected p95 of a SIGKILL outside an Alertmanager outage: the exit watch's settle + JVM start + 2s = %s", killBound)
	// A hung java is probed for hung-after (its last probe timing out),
	// then stopped as Steam stops one: SIGINTs, which a stopped process
	// never acts on, until SIGKILL.
	stopBound := (interval + hangHold + chaosHungAfter + chaosProbeTimeout + remediate.DefaultStopTimeout +
		jvm + 2*time.Second).Round(100 * time.Millisecond)
	p("expected p95 of a SIGSTOP: scrape + SteamDeploymentUnresponsive's hold %s + hung-after %s + probe timeout %s + Steam's SIGINT phase %s + JVM start + 2s = %s",
		hangHold, chaosHungAfter, chaosProbeTimeout, remediate.DefaultStopTimeout, stopBound)

	healed, unhealed := 0, 0
	byKind := map[string][]time.Duration{}
	outageByKind := map[string][]time.Duration{}
	for _, f := range c.faults {
		if f.healed.IsZero() {
			unhealed++
			var names []string
			for _, cd := range f.targets {
				names = append(names, cd.d.Name)
			}
			t.Errorf("fault %s at %s on %v never healed", f.kind, f.at.Format(time.TimeOnly), names)
			continue
		}
		healed++
		if f.duringOutage {
			outageByKind[f.kind] = append(outageByKind[f.kind], f.healed.Sub(f.at))
		} else {
			byKind[f.kind] = append(byKind[f.kind], f.healed.Sub(f.at))
		}
	}
	p("faults injected %d, healed %d, not healed %d (none free to fault: %d skipped), steam.db write lock held %d times for %s",
		len(c.faults), healed, unhealed, c.skipped, c.lockHolds, chaosLockHold)
	p("fault → serving again (every target answers /ping and Steam's row holds its new, verified PID):")
	p("  %-28s %5s %8s %8s %8s", "kind", "count", "p50", "p95", "max")
	var kills []time.Duration // every SIGKILL kind but the reboot
	for _, kind := range faultKinds {
		ds := byKind[kind]
		if len(ds) == 0 {
			continue
		}
		p("  %-28s %5d %8s %8s %8s", kind, len(ds), percentile(ds, 50), percentile(ds, 95), percentile(ds, 100))
		if kind != faultStop && kind != faultHungCheck && kind != faultReboot {
			kills = append(kills, ds...)
		}
	}
	within := func(ds []time.Duration, bound time.Duration) string {
		if percentile(ds, 95) <= bound {
			return "p95 within " + bound.String()
		}
		return "p95 OVER " + bound.String()
	}
	if len(kills) > 0 {
		p("  %-28s %5d %8s %8s %8s  %s", "all SIGKILLs but the reboot", len(kills), percentile(kills, 50),
			percentile(kills, 95), percentile(kills, 100), within(kills, killBound))
	}
	if ds := byKind[faultStop]; len(ds) > 0 {
		p("  %-28s %5d %8s %8s %8s  %s", "SIGSTOPs", len(ds), percentile(ds, 50), percentile(ds, 95), percentile(ds, 100),
			within(ds, stopBound))
	}
	if ds, hung := byKind[faultStop], byKind[faultHungCheck]; len(ds) > 0 && len(hung) > 0 {
		// Resumed at its restart, a check killed mid-way costs at most the
		// kill's own delay, not Alertmanager's repeat.
		extra := percentile(hung, 100) - percentile(ds, 100)
		verdict := "within"
		if extra > chaosRemediatorDown+time.Second {
			verdict = "OVER"
		}
		p("  a hung check killed mid-way took at most %s longer than a plain SIGSTOP: %s the kill's own delay %s + 1s",
			extra.Round(10*time.Millisecond), verdict, chaosRemediatorDown)
	}
	p("during an Alertmanager outage (one peer down; the survivor's peer timeout adds up):")
	for _, kind := range faultKinds {
		if ds := outageByKind[kind]; len(ds) > 0 {
			p("  %-28s %5d %8s %8s %8s", kind, len(ds), percentile(ds, 50), percentile(ds, 95), percentile(ds, 100))
		}
	}
	if c.reboot != nil {
		took := "never"
		if !c.reboot.healed.IsZero() {
			took = c.reboot.healed.Sub(c.reboot.at).Round(10 * time.Millisecond).String()
		}
		p("host reboot: %d deployments SIGKILLed at once, 2 rows left with foreign PIDs; all serving again after %s; peak JVMs starting at once %d (remediate.concurrency %d)",
			len(c.reboot.targets), took, c.rebootPeak, chaosConcurrency)
	}
	p("duplicates seen (two javas of one deployment in one 500 ms sample): %d", len(c.duplicates))
	for _, d := range c.duplicates {
		t.Errorf("duplicate: %s", d)
	}
	signalled := 0
	for _, fp := range c.foreigns {
		select {
		case <-fp.exited:
			signalled++
			t.Errorf("foreign process %d planted in a row ended: %v", fp.pid, fp.state)
		default:
		}
	}
	p("foreign processes planted %d, signalled %d", len(c.foreigns), signalled)
	p("deployments given up (steam_remediator_deployment_gave_up): %v", gaveUp)
	if gaveUp > 0 {
		t.Errorf("%v deployments given up", gaveUp)
	}
	labels := slices.Sorted(maps.Keys(dbs))
	for _, label := range labels {
		path := dbs[label]
		verdict := integrity(path)
		p("PRAGMA integrity_check %s: %s", label, verdict)
		if verdict != "ok" {
			t.Errorf("%s: integrity_check %s", path, verdict)
		}
	}
	p("peak RSS: exporter %.1f MiB, remediator %.1f MiB", float64(c.peakRSS["exporter"])/(1<<20), float64(c.peakRSS["remediator"])/(1<<20))

	t.Log("\n" + b.String())
	if *chaosReport != "" {
		if err := os.WriteFile(*chaosReport, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// integrity runs PRAGMA integrity_check on a database file, read-only.
func integrity(path string) string {
	db, err := sqlitefile.Open(path, sqlitefile.Options{Mode: sqlitefile.ReadOnly, BusyTimeout: 10 * time.Second})
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&verdict); err != nil {
		return err.Error()
	}
	return verdict
}

// percentile of ds (nearest rank), rounded for the report.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)].Round(10 * time.Millisecond)
}

// holdOf is the for: of alertname in rules; false when there is no such
// alert.
func holdOf(t *testing.T, rules []byte, alertname string) (time.Duration, bool) {
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				For   string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == alertname {
				d, err := time.ParseDuration(r.For)
				if err != nil {
					t.Fatalf("%s: for %q: %v", alertname, r.For, err)
				}
				return d, true
			}
		}
	}
	return 0, false
}

// addRemediator adds a second webhook to the remediator receiver: every
// host's remediator gets every notification and acts on its own host's.
func addRemediator(t *testing.T, config []byte, url string) []byte {
	var file struct {
		Receivers []struct {
			Name     string          `yaml:"name"`
			Webhooks []yaml.MapSlice `yaml:"webhook_configs,omitempty"`
			Rest     map[string]any  `yaml:",inline"`
		} `yaml:"receivers"`
		Rest map[string]any `yaml:",inline"`
	}
	if err := yaml.Unmarshal(config, &file); err != nil {
		t.Fatal(err)
	}
	added := false
	for i, r := range file.Receivers {
		if r.Name != dashboards.RemediatorReceiver || len(r.Webhooks) != 1 {
			continue
		}
		hook := slices.Clone(r.Webhooks[0])
		for k := range hook {
			if hook[k].Key == "url" {
				hook[k].Value, added = url, true
			}
		}
		file.Receivers[i].Webhooks = append(r.Webhooks, hook)
	}
	if !added {
		t.Fatalf("no %s receiver with one webhook and its url in\n%s", dashboards.RemediatorReceiver, config)
	}
	out, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func quote(s string) string { return `"` + s + `"` }

func getJSON(u string, v any) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// The HA pair's configuration is the shipped one with a webhook per host,
// and Alertmanager accepts it.
func TestAddRemediator(t *testing.T) {
	t.Parallel()
	amtool := testkit.RequireTool(t, "amtool")
	config, err := dashboards.AdaptAlertmanagerConfig(dashboards.AlertmanagerConfig, dashboards.AlertmanagerOverrides{
		RemediatorURL: "http://127.0.0.1:1/webhook", CredentialsFile: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	out := addRemediator(t, config, "http://127.0.0.1:2/webhook")
	path := writeFile(t, filepath.Join(t.TempDir(), "alertmanager.yml"), out)
	if b, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s\n%s", err, b, out)
	}
	for _, tc := range []struct {
		s    string
		want int
	}{
		{s: "url: http://127.0.0.1:1/webhook", want: 1},
		{s: "url: http://127.0.0.1:2/webhook", want: 1},
		{s: "credentials_file: /dev/null", want: 2}, // each webhook sends the token
		{s: "group_wait:", want: 2},                 // the routes are kept
	} {
		if got := strings.Count(string(out), tc.s); got != tc.want {
			t.Errorf("%q %d times, want %d, in\n%s", tc.s, got, tc.want, out)
		}
	}
}
