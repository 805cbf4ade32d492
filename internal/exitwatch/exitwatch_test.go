package exitwatch_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
	"github.com/steam-overseer/steam-overseer/internal/exitwatch"
	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// settle is shorter than the default so the tests run quickly; the ratio
// between it and Steam's stop below is what matters.
const settle = 600 * time.Millisecond

// watcher runs a watcher over h's registry and returns its events.
func watcher(t *testing.T, h *testkit.Home, opts exitwatch.Options) (<-chan exitwatch.Event, *exitwatch.Watcher) {
	t.Helper()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan exitwatch.Event, 16)
	w, err := exitwatch.New(steam.NewRegistry(h.Home), observe.New(steam.NewRegistry(h.Home), in), func(ev exitwatch.Event) { events <- ev },
		promslog.NewNopLogger(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return events, w
}

// metric returns the sum of a metric's samples gathered from w.
func metric(t testing.TB, w prometheus.Collector, name string) float64 {
	t.Helper()
	return testkit.MetricSum(t, w, name, nil)
}

func waitWatched(t *testing.T, w *exitwatch.Watcher, n float64) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("%v watched processes", n), func() bool {
		return metric(t, w, "steam_exporter_exit_watch_processes") == n
	})
}

func next(t *testing.T, events <-chan exitwatch.Event, within time.Duration) (exitwatch.Event, bool) {
	t.Helper()
	select {
	case ev := <-events:
		return ev, true
	case <-time.After(within):
		return exitwatch.Event{}, false
	}
}

func TestReportsDeathsNotStops(t *testing.T) {
	t.Parallel()
	opts := exitwatch.Options{Interval: time.Second, Settle: settle}
	for _, tc := range []struct {
		name string
		// act ends the deployment's java (or not) once it is watched.
		act        func(t *testing.T, h *testkit.Home, d steam.Deployment)
		sig        syscall.Signal
		wantReason string // "" : no event may come
	}{
		{
			name: "SIGKILL is a death", sig: syscall.SIGKILL, wantReason: exitwatch.ReasonExited,
		},
		{
			name: "a crash on SIGSEGV is a death", sig: syscall.SIGSEGV, wantReason: exitwatch.ReasonExited,
		},
		{
			// Steam's stop: SIGINT, then the row deleted once the java is
			// gone, up to a second later.
			name: "Steam's stop is not a death", sig: syscall.SIGINT,
			act: func(t *testing.T, h *testkit.Home, d steam.Deployment) {
				time.Sleep(settle / 2)
				h.Exec(`DELETE FROM service WHERE id = ?`, d.ID)
			},
		},
		{
			name: "Steam's stop through state stopped is not a death", sig: syscall.SIGINT,
			act: func(t *testing.T, h *testkit.Home, d steam.Deployment) {
				time.Sleep(settle / 2)
				h.Exec(`UPDATE service SET state = 'stopped' WHERE id = ?`, d.ID)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
			events, w := watcher(t, h, opts)
			waitWatched(t, w, 1)
			killed := time.Now()
			if err := p.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if tc.act != nil {
				tc.act(t, h, d)
			}
			ev, ok := next(t, events, settle+3*time.Second)
			switch {
			case tc.wantReason == "" && ok:
				t.Fatalf("got %+v after a stop, want no event", ev)
			case tc.wantReason == "":
				if got := metric(t, w, "steam_exporter_exit_watch_stops_total"); got != 1 {
					t.Errorf("stops_total = %v, want 1", got)
				}
				return
			case !ok:
				t.Fatal("no event after the java died")
			}
			want := exitwatch.Event{ID: d.ID, Name: d.Name, PID: d.PID, Down: true, Reason: tc.wantReason, At: ev.At}
			if ev != want {
				t.Errorf("got %+v, want %+v", ev, want)
			}
			latency := ev.At.Sub(killed)
			t.Logf("kill → report: %v (settle %v)", latency, settle)
			if latency < settle {
				t.Errorf("reported after %v, before the settle window of %v ended", latency, settle)
			}
			if got := metric(t, w, "steam_exporter_exit_watch_exits_total"); got != 1 {
				t.Errorf("exits_total = %v, want 1", got)
			}
		})
	}
}

// TestDeathsWhileNotWatching: the exporter was down when the java died; the
// row still says started with a PID that is dead or someone else's.
func TestDeathsWhileNotWatching(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		spec       testkit.Spec
		pid        func(t *testing.T, h *testkit.Home, d steam.Deployment) int
		wantReason string // "": no event may come
	}{
		{"unverifiable deployment (no war)", testkit.Spec{Name: "churn", NoWar: true},
			func(t *testing.T, h *testkit.Home, d steam.Deployment) int {
				return testkit.StartForeign(t).Pid
			}, ""},
		{"dead PID", testkit.Spec{}, func(t *testing.T, h *testkit.Home, d steam.Deployment) int {
			p := testkit.StartForeign(t)
			testkit.Kill(t, p)
			return p.Pid
		}, exitwatch.ReasonDead},
		{"PID reused by another program", testkit.Spec{}, func(t *testing.T, h *testkit.Home, d steam.Deployment) int {
			return testkit.StartForeign(t).Pid
		}, exitwatch.ReasonPIDReused},
		{"PID of another deployment's java", testkit.Spec{}, func(t *testing.T, h *testkit.Home, d steam.Deployment) int {
			other, _ := h.Run(testkit.Spec{Name: "other", LogicalName: "other"})
			return int(other.PID)
		}, exitwatch.ReasonPIDReused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			spec := tc.spec
			if spec.Name == "" {
				spec = testkit.Spec{Name: "churn", LogicalName: "churn"}
			}
			d := h.Add(spec)
			pid := tc.pid(t, h, d)
			if err := h.SetPID(d.ID, pid); err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			events, _ := watcher(t, h, exitwatch.Options{Settle: settle})
			if tc.wantReason == "" {
				if ev, ok := next(t, events, settle+2*time.Second); ok {
					t.Fatalf("got %+v, want no event", ev)
				}
				return
			}
			var ev exitwatch.Event
			testkit.Eventually(t, 5*time.Second, "the dead deployment reported", func() bool {
				var ok bool
				ev, ok = next(t, events, 10*time.Millisecond)
				return ok && ev.ID == d.ID
			})
			if !ev.Down || ev.Reason != tc.wantReason || ev.PID != int64(pid) {
				t.Errorf("got %+v, want down with reason %s and PID %d", ev, tc.wantReason, pid)
			}
			t.Logf("start → report: %v", ev.At.Sub(begin))
		})
	}
}

// TestUpAgain: a deployment reported down is reported up once a verified
// java is recorded, or once Steam no longer wants it running; a restart
// recorded within the settle window is no death at all.
func TestUpAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		restart  func(t *testing.T, h *testkit.Home, d steam.Deployment)
		wantDown bool
	}{
		{"restarted", func(t *testing.T, h *testkit.Home, d steam.Deployment) {
			h.Start(h.Deployment(d.ID))
		}, true},
		{"row deleted", func(t *testing.T, h *testkit.Home, d steam.Deployment) {
			h.Exec(`DELETE FROM service WHERE id = ?`, d.ID)
		}, true},
		{"restarted within the settle window", func(t *testing.T, h *testkit.Home, d steam.Deployment) {
			h.Start(h.Deployment(d.ID))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
			// The in-window restart needs a window longer than a start.
			window := settle
			if !tc.wantDown {
				window = 5 * time.Second
			}
			events, w := watcher(t, h, exitwatch.Options{Settle: window})
			waitWatched(t, w, 1)
			testkit.Kill(t, p)
			if tc.wantDown {
				if ev, ok := next(t, events, window+3*time.Second); !ok || !ev.Down {
					t.Fatalf("got %+v (%v), want down", ev, ok)
				}
			}
			tc.restart(t, h, d)
			ev, ok := next(t, events, window+3*time.Second)
			if !tc.wantDown {
				if ok {
					t.Fatalf("got %+v, want no event for a restart within the settle window", ev)
				}
				waitWatched(t, w, 1)
				return
			}
			if !ok || ev.Down || ev.ID != d.ID {
				t.Fatalf("got %+v (%v), want deployment %d up", ev, ok, d.ID)
			}
		})
	}
}

// stopLikeSteam stops a deployment as Steam does: SIGINT every second, a
// SIGKILL after 10 s, and the row deleted once it has seen the java gone.
func stopLikeSteam(t *testing.T, h *testkit.Home, d steam.Deployment, p *os.Process) {
	t.Helper()
	for range 10 {
		if err := p.Signal(syscall.SIGINT); err != nil {
			break
		}
		time.Sleep(time.Second)
		if !testkit.Alive(p.Pid) {
			break
		}
	}
	if testkit.Alive(p.Pid) {
		testkit.Kill(t, p)
		time.Sleep(time.Second)
	}
	h.Exec(`DELETE FROM service WHERE id = ?`, d.ID)
}

// TestSteamStopWithDefaults: the default settle window is shorter than
// either of Steam's stops (an idle java's SIGINT, a hung one's SIGKILL after
// 10 s), whose row goes a second after the java: the stop is reported down,
// and up again once the row is gone, which resolves the alert; the
// remediator cancels what it started meanwhile (e2e TestSteamStopsUnderWatch).
func TestSteamStopWithDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		behaviour fakescorer.Behaviour
	}{
		{"idle java exits on SIGINT", fakescorer.Behaviour{}},
		{"hung java killed after 10s", fakescorer.Behaviour{IgnoreSIGINT: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn", Behaviour: tc.behaviour})
			events, w := watcher(t, h, exitwatch.Options{})
			waitWatched(t, w, 1)
			stopLikeSteam(t, h, d, p)
			if ev, ok := next(t, events, exitwatch.DefaultSettle+time.Second); !ok || !ev.Down || ev.ID != d.ID {
				t.Fatalf("got %+v (%v) after Steam's stop, want deployment %d down", ev, ok, d.ID)
			}
			if ev, ok := next(t, events, 3*time.Second); !ok || ev.Down || ev.ID != d.ID {
				t.Fatalf("got %+v (%v) after the row was deleted, want deployment %d up", ev, ok, d.ID)
			}
		})
	}
}
