package remediate

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// fakeClock is the restart policy's clock in tests: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := Policy{}.withDefaults()
	for _, tc := range []struct {
		failures int
		random   float64
		want     time.Duration
	}{
		{1, 0, 10 * time.Second},
		{2, 0, 20 * time.Second},
		{3, 0, 40 * time.Second},
		{4, 0, 80 * time.Second},
		{5, 0, 160 * time.Second},
		{6, 0, 5 * time.Minute},
		{60, 0, 5 * time.Minute},
		{1, 0.5, 11 * time.Second}, // jitter: 20 % of 10 s, half of it
		{6, 0.5, 5*time.Minute + 30*time.Second},
	} {
		if got := p.backoff(tc.failures, tc.random); got != tc.want {
			t.Errorf("backoff after %d failures (random %v) = %s, want %s", tc.failures, tc.random, got, tc.want)
		}
	}
	noJitter := Policy{Jitter: -1}.withDefaults()
	if got := noJitter.backoff(1, 0.99); got != 10*time.Second {
		t.Errorf("backoff without jitter = %s, want 10s", got)
	}
}

func TestPolicyArithmetic(t *testing.T) {
	t.Parallel()
	p := Policy{Jitter: -1}.withDefaults()
	clock := newFakeClock()
	pol := state.RestartPolicy{DeploymentID: 1}
	for i := 1; i <= 4; i++ {
		pol = p.failed(pol, clock.Now(), 0)
		if pol.ConsecutiveFailures != i || pol.GaveUp(clock.Now()) {
			t.Fatalf("after %d failures: %+v, want not given up", i, pol)
		}
		if want := clock.Now().Add(p.backoff(i, 0)); !pol.NextStart.Equal(want) {
			t.Errorf("after %d failures: next start %s, want %s", i, pol.NextStart, want)
		}
		clock.Add(p.backoff(i, 0))
	}
	pol = p.failed(pol, clock.Now(), 0)
	gaveUpAt := clock.Now()
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {59 * time.Minute, true}, {time.Hour, false}} {
		if got := pol.GaveUp(gaveUpAt.Add(tc.after)); got != tc.want {
			t.Errorf("given up %s after the 5th failure: %v, want %v", tc.after, got, tc.want)
		}
	}
	if !strings.Contains(pol.GaveUpReason, "5 consecutive") {
		t.Errorf("reason %q", pol.GaveUpReason)
	}
	healthy := p.healthy(p.ready(pol, 42, clock.Now(), time.Minute))
	if healthy.ConsecutiveFailures != 0 || !healthy.NextStart.IsZero() || healthy.ProbationPID != 0 || !healthy.GaveUp(clock.Now()) {
		t.Errorf("healthy: %+v, want clean but still given up", healthy)
	}
}

// TestBackoffAndGivingUpAcrossRestarts runs the production policy on a fake
// clock against a deployment that crashes at every start: notifications in
// the backoff start nothing, the fifth failure gives it up, a new engine on
// the same state remembers all of it, and an hour later one start is tried
// again.
func TestBackoffAndGivingUpAcrossRestarts(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	clock := newFakeClock()
	production := func(c *Config) {
		c.Policy = Policy{Jitter: -1}
		c.Now = clock.Now
	}
	e := newEngine(t, h, production)
	d := h.Add(testkit.Spec{Name: "churn", Behaviour: testkit.Behaviour{Mode: "crash_at_start"}})

	expect := func(e *testEngine, action Action, reason string, wantStarts int) {
		t.Helper()
		o, err := e.Remediate(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Action != action || !strings.HasPrefix(o.Why(), reason) {
			t.Fatalf("outcome %s, want %s (%s…)", o, action, reason)
		}
		if n := testkit.StartsLogged(t, h, d.ID); n != wantStarts {
			t.Fatalf("%d starts, want %d", n, wantStarts)
		}
	}
	expect(e, ActionRestart, "exited", 1)
	expect(e, ActionSkip, "backoff", 1)
	clock.Add(10 * time.Second)
	expect(e, ActionRestart, "exited", 2)
	clock.Add(19 * time.Second)
	expect(e, ActionSkip, "backoff", 2)
	clock.Add(time.Second)
	expect(e, ActionRestart, "exited", 3)

	// The remediator restarts: the backoff is remembered.
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e = newEngine(t, h, production)
	expect(e, ActionSkip, "backoff", 3)
	clock.Add(40 * time.Second)
	expect(e, ActionRestart, "exited", 4)
	clock.Add(80 * time.Second)
	expect(e, ActionRestart, "exited", 5)
	js := e.journal(t, d.ID)
	if last := js[len(js)-1]; last.Action != state.ActionGiveUp {
		t.Fatalf("last journal entry %+v, want give_up:%s", last, describeJournal(js))
	}
	clock.Add(5 * time.Minute)
	expect(e, ActionSkip, "gave_up", 5)
	clock.Add(54 * time.Minute)
	expect(e, ActionSkip, "gave_up", 5)

	// An hour after giving up, one more start; it fails, and the
	// deployment is given up again at once.
	clock.Add(time.Minute)
	expect(e, ActionRestart, "exited", 6)
	js = e.journal(t, d.ID)
	if n := countActions(js, state.ActionGiveUp, ""); n != 2 {
		t.Errorf("%d give-ups journaled, want 2:%s", n, describeJournal(js))
	}
	if n := countActions(js, state.ActionReset, ""); n != 1 || !strings.Contains(describeJournal(js), "give_up_expired") {
		t.Errorf("expiry of the give-up not journaled:%s", describeJournal(js))
	}
	expect(e, ActionSkip, "gave_up", 6)
}

// TestFlapping: a deployment that starts fine but keeps dying (after its
// watch window) is given up after MaxStarts starts within the window.
func TestFlapping(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	clock := newFakeClock()
	e := newEngine(t, h, func(c *Config) {
		c.Policy = Policy{Jitter: -1}
		c.Now = clock.Now
		c.WatchAfterReady = 10 * time.Millisecond
	})
	d := h.Add(testkit.Spec{Name: "churn"})
	identity, _ := h.Deployment(d.ID).Identity()
	for i := 1; i <= DefaultMaxStarts; i++ {
		o, err := e.Remediate(context.Background(), d.ID)
		if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
			t.Fatalf("start %d: %s (%v)", i, o, err)
		}
		testkit.Eventually(t, 5*time.Second, "the watch window to close", func() bool {
			pol, err := e.state.RestartPolicy(context.Background(), d.ID)
			return err == nil && pol.ProbationPID == 0
		})
		h.KillJavas()
		if found, _ := inspector(t).Find(identity); len(found) != 0 {
			t.Fatalf("java still runs: %+v", found)
		}
		clock.Add(5 * time.Minute)
	}
	// Ten starts in 50 minutes: the eleventh is refused.
	o, err := e.Remediate(context.Background(), d.ID)
	if err != nil || o.Action != ActionGiveUp || !strings.HasPrefix(o.Why(), "flapping") {
		t.Fatalf("outcome %s (%v), want give_up (flapping)", o, err)
	}
	if o, err := e.Remediate(context.Background(), d.ID); err != nil || o.Action != ActionSkip || !strings.HasPrefix(o.Why(), "gave_up: flapping") {
		t.Fatalf("outcome %s (%v), want skip (gave_up: flapping)", o, err)
	}
	if n := testkit.StartsLogged(t, h, d.ID); n != DefaultMaxStarts {
		t.Errorf("%d starts, want %d", n, DefaultMaxStarts)
	}
	js := e.journal(t, d.ID)
	if n := countActions(js, state.ActionGiveUp, ""); n != 1 {
		t.Errorf("%d give-ups journaled, want 1:%s", n, describeJournal(js))
	}
	if n := countActions(js, state.ActionFailure, ""); n != 0 {
		t.Errorf("starts that lived through their window counted as failures:%s", describeJournal(js))
	}
}

// TestWatchWindowLeftOpen: the engine that started a process is gone before
// its watch window closed (a remediator restarted, `reconcile --once`
// exited), so the next remediation settles the window: a process gone
// within it, or gone by the time the window is checked after it, counts as
// a failed start; one found running wipes the failures.
func TestWatchWindowLeftOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		behaviour testkit.Behaviour
		// later is how far the clock moves before the next remediation.
		later        time.Duration
		wantAction   Action
		wantFailures int
		wantReason   string // of the failure journaled
	}{
		{name: "gone within the window", behaviour: testkit.Behaviour{Mode: "crash_after_ready", CrashAfter: 2 * time.Second},
			later: 0, wantAction: ActionSkip, wantFailures: 2, wantReason: "died_after_ready"},
		{name: "gone after the window", behaviour: testkit.Behaviour{Mode: "crash_after_ready", CrashAfter: 2 * time.Second},
			later: 2 * time.Minute, wantAction: ActionSkip, wantFailures: 2, wantReason: "died_after_ready: not seen running after its watch window"},
		{name: "running after the window", behaviour: testkit.Behaviour{Mode: "normal"},
			later: 2 * time.Minute, wantAction: ActionNoop, wantFailures: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			clock := newFakeClock()
			config := func(c *Config) {
				c.Policy = Policy{Jitter: -1}
				c.Now = clock.Now
				c.WatchAfterReady = time.Minute
			}
			e := newEngine(t, h, config)
			d := h.Add(testkit.Spec{Name: "churn", Behaviour: tc.behaviour})
			if err := e.state.SaveRestartPolicy(context.Background(), state.RestartPolicy{DeploymentID: d.ID, ConsecutiveFailures: 1}); err != nil {
				t.Fatal(err)
			}
			o, err := e.Remediate(context.Background(), d.ID)
			if err != nil || o.Action != ActionRestart || o.Result != ResultSuccess {
				t.Fatalf("outcome %s (%v), want restart success", o, err)
			}
			// The engine goes, and its watcher with it.
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tc.behaviour.Mode == "crash_after_ready" {
				testkit.Eventually(t, 20*time.Second, "the process to crash", func() bool { return !alive(t, int(o.NewPID)) })
			}
			if pol, err := e.state.RestartPolicy(context.Background(), d.ID); err != nil || pol.ProbationPID != o.NewPID {
				t.Fatalf("policy %+v (%v), want the window of PID %d still open", pol, err, o.NewPID)
			}
			clock.Add(tc.later)

			e2 := newEngine(t, h, config)
			next, err := e2.Remediate(context.Background(), d.ID)
			if err != nil || next.Action != tc.wantAction {
				t.Fatalf("next remediation: %s (%v), want %s", next, err, tc.wantAction)
			}
			pol, err := e2.state.RestartPolicy(context.Background(), d.ID)
			if err != nil || pol.ConsecutiveFailures != tc.wantFailures || pol.ProbationPID != 0 {
				t.Errorf("policy %+v (%v), want %d consecutive failures and the window closed", pol, err, tc.wantFailures)
			}
			js := e2.journal(t, d.ID)
			var failures []state.Entry
			for _, j := range js {
				if j.Action == state.ActionFailure {
					failures = append(failures, j)
				}
			}
			switch {
			case tc.wantReason == "" && len(failures) != 0:
				t.Errorf("failure journaled for a process that lived:%s", describeJournal(js))
			case tc.wantReason != "" && (len(failures) != 1 || entryWhy(failures[0]) != tc.wantReason || failures[0].NewPID != o.NewPID):
				t.Errorf("want one failure of PID %d (%s):%s", o.NewPID, tc.wantReason, describeJournal(js))
			}
			if n := testkit.StartsLogged(t, h, d.ID); n != 1 {
				t.Errorf("%d starts, want 1", n)
			}
		})
	}
}
