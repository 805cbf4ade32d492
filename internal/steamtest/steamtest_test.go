package steamtest_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

func TestAlive(t *testing.T) {
	sleep := steamtest.StartForeign(t)
	dead := steamtest.StartForeign(t)
	steamtest.Kill(t, dead)
	// A child killed and not waited for stays a zombie until the cleanup.
	zombie := exec.Command("sleep", "600")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zombie.Wait() })
	if err := zombie.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	steamtest.Eventually(t, 10*time.Second, "sleep to become a zombie", func() bool {
		return !steamtest.Alive(zombie.Process.Pid)
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
			if got := steamtest.Alive(tc.pid); got != tc.want {
				t.Errorf("Alive(%d) = %v, want %v", tc.pid, got, tc.want)
			}
		})
	}
}
