package probe_test

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// serverPort is the loopback port of an httptest server.
func serverPort(t *testing.T, h http.Handler) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return p
}

func TestPing(t *testing.T) {
	h := testkit.NewHome(t)
	run := func(b testkit.Behaviour) (int, *os.Process) {
		d, p := h.Run(testkit.Spec{Name: "scorer", LogicalName: "scorer", Behaviour: b})
		return int(d.Port), p
	}
	normal, _ := run(testkit.Behaviour{})
	broken := h.Add(testkit.Spec{Name: "broken", LogicalName: "broken",
		Behaviour: testkit.Behaviour{Mode: "unavailable"}})
	unavailable := int(broken.Port)
	// An unavailable scorer never passes Start's readiness check.
	cmd := h.Command(h.Java, broken)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Reap(t, cmd)
	testkit.Eventually(t, 10*time.Second, "the unavailable scorer to listen", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(unavailable))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	slow, _ := run(testkit.Behaviour{PingDelay: 300 * time.Millisecond})
	stopped, stoppedProc := run(testkit.Behaviour{})
	testkit.Freeze(t, stoppedProc)
	closed, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	redirect := serverPort(t, http.RedirectHandler("/elsewhere", http.StatusFound))
	bigHeader := serverPort(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Padding", strings.Repeat("x", 4096)) // longer than the probe's read buffer
	}))
	health := serverPort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))

	for _, tc := range []struct {
		name        string
		port        int
		path        string
		timeout     time.Duration
		wantSuccess bool
		wantCode    int
		wantTimeout bool
		wantErr     bool
		minDuration time.Duration
	}{
		{name: "serving", port: normal, wantSuccess: true, wantCode: 200},
		{name: "503 is a failure without an error", port: unavailable, wantCode: 503},
		{name: "slow within the timeout", port: slow, wantSuccess: true, wantCode: 200, minDuration: 300 * time.Millisecond},
		{name: "slower than the timeout", port: slow, timeout: 100 * time.Millisecond, wantTimeout: true, wantErr: true},
		{name: "stopped", port: stopped, timeout: 300 * time.Millisecond, wantTimeout: true, wantErr: true},
		{name: "nothing listens", port: closed, wantErr: true},
		{name: "a redirect is not followed", port: redirect, wantCode: http.StatusFound},
		{name: "a header longer than the read buffer", port: bigHeader, wantSuccess: true, wantCode: 200},
		{name: "another path", port: health, path: "/healthz", wantSuccess: true, wantCode: 200},
		{name: "the default path on a server without it", port: health, wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, timeout := cmp.Or(tc.path, probe.DefaultPath), tc.timeout
			if timeout == 0 {
				timeout = probe.DefaultTimeout
			}
			begin := time.Now()
			r := probe.Ping(context.Background(), tc.port, path, timeout)
			if r.Success != tc.wantSuccess || r.StatusCode != tc.wantCode || (r.Err != nil) != tc.wantErr ||
				errors.Is(r.Err, probe.ErrTimeout) != tc.wantTimeout {
				t.Errorf("Ping = success %v, code %d, err %v; want success %v, code %d, error %v, timeout %v",
					r.Success, r.StatusCode, r.Err, tc.wantSuccess, tc.wantCode, tc.wantErr, tc.wantTimeout)
			}
			if r.Duration < tc.minDuration || r.Duration > time.Since(begin) {
				t.Errorf("Duration = %s, want between %s and %s", r.Duration, tc.minDuration, time.Since(begin))
			}
			if r.Time.Before(begin) || r.Time.After(begin.Add(r.Duration)) {
				t.Errorf("Time = %s, want the probe's start (%s)", r.Time, begin)
			}
			if tc.wantTimeout && r.Duration > timeout+2*time.Second {
				t.Errorf("a timed-out probe took %s, timeout %s", r.Duration, timeout)
			}
			if (r.Reason() == "") != r.Success {
				t.Errorf("Reason() = %q for success %v", r.Reason(), r.Success)
			}
		})
	}
}

func TestPingAllIsConcurrentAndKeepsOrder(t *testing.T) {
	var inFlight atomic.Int32
	release := make(chan struct{})
	slow := serverPort(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		inFlight.Add(1)
		<-release
	}))
	ok := serverPort(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	bad := serverPort(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	ports := []int{ok, slow, bad, slow, slow, slow, ok}
	done := make(chan []probe.Result)
	go func() { done <- probe.PingAll(context.Background(), ports, "/ping", 30*time.Second, 16) }()
	// All four slow requests wait at once: nobody queues behind a slow one.
	testkit.Eventually(t, 10*time.Second, "4 slow probes in flight at once", func() bool { return inFlight.Load() == 4 })
	close(release)
	for i, r := range <-done {
		if want := ports[i] != bad; r.Success != want {
			t.Errorf("result %d (port %d): success %v, want %v (%v)", i, ports[i], r.Success, want, r.Err)
		}
	}
}

// latest is a deployment's outcome in the prober's latest results.
func latest(p *probe.Prober, id int64) (probe.Outcome, bool) {
	for _, o := range p.Latest() {
		if o.ID == id {
			return o, true
		}
	}
	return probe.Outcome{}, false
}

func TestProberFollowsAStoppedDeployment(t *testing.T) {
	h := testkit.NewHome(t)
	serving, _ := h.Run(testkit.Spec{Name: "serving", LogicalName: "serving"})
	victim, victimProc := h.Run(testkit.Spec{Name: "victim", LogicalName: "victim"})
	dead, deadProc := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	p := probe.NewProber(probe.RunningTargets(steam.NewRegistry(h.Home), in),
		probe.Config{Interval: interval, Timeout: 200 * time.Millisecond}, promslog.NewNopLogger())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	waitFor := func(what string, id int64, cond func(o probe.Outcome, ok bool) bool) probe.Outcome {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, what, func() bool { return cond(latest(p, id)) })
		o, _ := latest(p, id)
		return o
	}
	succeeding := func(o probe.Outcome, ok bool) bool { return ok && o.Success && o.Failures == 0 }
	for _, d := range []steam.Deployment{serving, victim, dead} {
		o := waitFor(d.Name+" to answer", d.ID, succeeding)
		if o.PID != int(d.PID) || o.Port != int(d.Port) || o.Name != d.Name || o.StatusCode != 200 {
			t.Errorf("outcome of %s = %+v, want PID %d, port %d", d.Name, o, d.PID, d.Port)
		}
	}

	testkit.Freeze(t, victimProc)
	o := waitFor("the stopped deployment to fail", victim.ID, func(o probe.Outcome, ok bool) bool { return ok && !o.Success })
	if !errors.Is(o.Err, probe.ErrTimeout) {
		t.Errorf("stopped deployment's probe error = %v, want a timeout", o.Err)
	}
	answered := o.LastSuccess
	if answered.IsZero() || !answered.Before(o.Time) {
		t.Errorf("stopped deployment's last success %v, want its answer before the failed probe at %v", answered, o.Time)
	}
	o = waitFor("failures to count up", victim.ID, func(o probe.Outcome, ok bool) bool { return ok && o.Failures >= 3 })
	if !o.LastSuccess.Equal(answered) {
		t.Errorf("last success moved to %v while the deployment failed, want %v", o.LastSuccess, answered)
	}
	if o, _ := latest(p, serving.ID); !o.Success {
		t.Errorf("the serving deployment failed beside the stopped one: %+v", o)
	}

	if err := victimProc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	o = waitFor("the continued deployment to answer again", victim.ID, succeeding)
	if !o.LastSuccess.Equal(o.Time) {
		t.Errorf("last success %v, want the answering probe's %v", o.LastSuccess, o.Time)
	}

	testkit.Kill(t, deadProc)
	waitFor("a dead deployment to leave the results", dead.ID, func(_ probe.Outcome, ok bool) bool { return !ok })

	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of its context's end")
	}
}

// A restarted deployment (another PID) starts counting its failures afresh.
func TestProberResetsFailuresOfANewProcess(t *testing.T) {
	closed, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	target := probe.Target{ID: 7, Name: "churn", Port: closed, PID: 100, Started: 1e9}
	p := probe.NewProber(func(context.Context) ([]probe.Target, error) {
		mu.Lock()
		defer mu.Unlock()
		return []probe.Target{target}, nil
	}, probe.Config{Timeout: 200 * time.Millisecond}, promslog.NewNopLogger())

	for _, step := range []struct {
		pid          int
		started      float64
		wantFailures int
	}{
		{100, 1e9, 1}, {100, 1e9, 2}, {100, 1e9, 3},
		{101, 1e9, 1}, {101, 1e9, 2},
		{101, 2e9, 1}, // the same PID, reused by another process
	} {
		mu.Lock()
		target.PID, target.Started = step.pid, step.started
		mu.Unlock()
		p.Round(context.Background())
		o, ok := latest(p, 7)
		if !ok || o.Failures != step.wantFailures || o.PID != step.pid || !o.LastSuccess.IsZero() {
			t.Fatalf("after a round of PID %d: %+v (published %v), want %d failures", step.pid, o, ok, step.wantFailures)
		}
	}
}

func TestProberKeepsResultsWhenTheRegistryFails(t *testing.T) {
	closed, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	fail := false
	p := probe.NewProber(func(context.Context) ([]probe.Target, error) {
		if fail {
			return nil, errors.New("database is locked")
		}
		return []probe.Target{{ID: 1, Port: closed, PID: 5}}, nil
	}, probe.Config{Timeout: 200 * time.Millisecond}, promslog.NewNopLogger())
	p.Round(context.Background())
	fail = true
	p.Round(context.Background())
	if o, ok := latest(p, 1); !ok || o.Failures != 1 {
		t.Errorf("after a failed listing: %+v (published %v), want the previous outcome", o, ok)
	}
}

// A round adds probes in flight as they fall behind, so that it ends within
// one interval even if every deployment times out, and has no more than
// configured when the interval leaves time for them all.
func TestProberConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		wantMax  int32
	}{
		{name: "the interval fits 40 timeouts of 4 at once", interval: time.Hour, wantMax: 4},
		{name: "40 timeouts must start at once", interval: 10 * time.Second, wantMax: 40},
		{name: "40 timeouts must start within 2s", interval: 22 * time.Second, wantMax: 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			release := make(chan struct{})
			port := serverPort(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
			}))
			var releaseOnce sync.Once
			free := func() { releaseOnce.Do(func() { close(release) }) }
			t.Cleanup(free) // before the server's: a failed test must not hang in its Close
			targets := make([]probe.Target, 40)
			for i := range targets {
				targets[i] = probe.Target{ID: int64(i + 1), Port: port, PID: i + 1}
			}
			p := probe.NewProber(func(context.Context) ([]probe.Target, error) { return targets, nil },
				probe.Config{Interval: tc.interval, Timeout: 20 * time.Second, Concurrency: 4}, promslog.NewNopLogger())
			done := make(chan struct{})
			go func() { p.Round(context.Background()); close(done) }()
			testkit.Eventually(t, 10*time.Second, "the probes to be in flight", func() bool { return inFlight.Load() == tc.wantMax })
			free()
			<-done
			if m := most.Load(); m != tc.wantMax {
				t.Errorf("%d probes in flight at most, want %d", m, tc.wantMax)
			}
			if n := len(p.Latest()); n != len(targets) {
				t.Errorf("%d outcomes, want %d", n, len(targets))
			}
		})
	}
}

// Probes that answer in 5ms never fall behind: a round of 200 keeps to the
// configured workers, however many a round of timeouts would need.
func TestProberAddsNoWorkerForFastProbes(t *testing.T) {
	var inFlight, most atomic.Int32
	port := serverPort(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
	}))
	targets := make([]probe.Target, 200)
	for i := range targets {
		targets[i] = probe.Target{ID: int64(i + 1), Port: port, PID: i + 1}
	}
	// 200 timeouts of 2s in a minute would need 7 at once.
	p := probe.NewProber(func(context.Context) ([]probe.Target, error) { return targets, nil },
		probe.Config{Interval: time.Minute, Timeout: 2 * time.Second, Concurrency: 2}, promslog.NewNopLogger())
	p.Round(context.Background())
	if m := most.Load(); m > 2 {
		t.Errorf("%d probes in flight at most, want at most 2", m)
	}
	succeeded := 0
	for _, o := range p.Latest() {
		if o.Success {
			succeeded++
		}
	}
	if succeeded != len(targets) {
		t.Errorf("%d of %d probes succeeded", succeeded, len(targets))
	}
}
