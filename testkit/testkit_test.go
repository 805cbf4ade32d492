package testkit_test

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/testkit"
)

func TestAlive(t *testing.T) {
	t.Parallel()
	sleep := testkit.StartForeign(t)
	dead := testkit.StartForeign(t)
	testkit.Kill(t, dead)
	// A child killed and not waited for stays a zombie until the cleanup.
	zombie := exec.Command("sleep", "600")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zombie.Wait() })
	if err := zombie.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "sleep to become a zombie", func() bool {
		return !testkit.Alive(zombie.Process.Pid)
	})
	for _, tc := range []struct {
		name string
		pid  int
		want bool
	}{
		{name: "alive, whatever it runs", pid: sleep.Pid, want: true},
		{name: "dead", pid: dead.Pid, want: false},
		{name: "zombie", pid: zombie.Process.Pid, want: false},
		{name: "no pid", pid: 0, want: false},
		{name: "negative", pid: -1, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := testkit.Alive(tc.pid); got != tc.want {
				t.Errorf("Alive(%d) = %v, want %v", tc.pid, got, tc.want)
			}
		})
	}
}

// outcome records how a check ended on a testing.TB, without ending the test
// that runs it.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper() {}
func (o *outcome) Skipf(format string, args ...any) {
	o.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (o *outcome) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestRequireTool: a missing program fails the test, except under -short,
// where every test needing a program is skipped.
func TestRequireTool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tool string
		wantPath   bool
	}{
		{name: "installed", tool: "sh", wantPath: true},
		{name: "missing", tool: "steam-overseer-no-such-tool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &outcome{TB: t}
			var path string
			done := make(chan struct{})
			go func() { defer close(done); path = testkit.RequireTool(o, tc.tool) }()
			<-done
			switch {
			case testing.Short():
				if o.skipped == "" || !strings.Contains(o.skipped, tc.tool) {
					t.Errorf("under -short: skipped %q, failed %q, path %q; want a skip naming %s", o.skipped, o.failed, path, tc.tool)
				}
			case o.skipped != "":
				t.Errorf("skipped without -short: %s", o.skipped)
			case tc.wantPath && (path == "" || o.failed != ""):
				t.Errorf("RequireTool(%s) = %q, failed %q", tc.tool, path, o.failed)
			case !tc.wantPath && !strings.Contains(o.failed, tc.tool):
				t.Errorf("RequireTool(%s) = %q, failed %q; want a failure naming it", tc.tool, path, o.failed)
			}
		})
	}
}

// fatalTB records the Fatalf that ends a helper, as a failing test would.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyEvery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		holdsAt int // the call at which cond holds; 0: never
		want    string
	}{
		{name: "holds at once", holdsAt: 1},
		{name: "holds later", holdsAt: 3},
		{name: "never holds", want: "timed out after 50ms waiting for the thing; last: call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			calls := 0
			// A condition that holds gets time a loaded machine cannot use up.
			timeout := 10 * time.Second
			if tc.holdsAt == 0 {
				timeout = 50 * time.Millisecond
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testkit.EventuallyEvery(tb, timeout, time.Millisecond, "the thing", func() (bool, string) {
					calls++
					return calls == tc.holdsAt, fmt.Sprint("call ", calls)
				})
			}()
			<-done
			if tc.want == "" && (tb.msg != "" || calls != tc.holdsAt) {
				t.Errorf("failed with %q after %d calls, want success at call %d", tb.msg, calls, tc.holdsAt)
			}
			if tc.want != "" && !strings.HasPrefix(tb.msg, tc.want) {
				t.Errorf("failed with %q, want %q…", tb.msg, tc.want)
			}
		})
	}
}
