package steamfixture_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// TestStart checks that Start records the PID only by compare-and-set: a
// row changed since it was read is left alone, and the started process is
// not left running.
func TestStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// rowPID is written into the row after the deployment is read;
		// 0 leaves it as read.
		rowPID  int64
		wantErr error
	}{
		{name: "row as read"},
		{name: "row changed since", rowPID: 4242, wantErr: steam.ErrPIDChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			d := h.Add(steamfixture.Spec{Name: "churn", LogicalName: "churn"})
			if tc.rowPID != 0 {
				h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, tc.rowPID, d.ID)
			}
			cmd, err := h.Fixture.Start(h.Java, d, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Start = %v, want %v", err, tc.wantErr)
			}
			got := h.Deployment(d.ID).PID
			if err != nil {
				if cmd != nil {
					t.Errorf("Start failed but returned a process")
				}
				if got != tc.rowPID {
					t.Errorf("row holds PID %d after a failed start, want %d as written", got, tc.rowPID)
				}
				// Start reaped what it started: no live java of the
				// deployment remains.
				if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.Port)); err == nil {
					conn.Close()
					t.Errorf("the deployment still listens on port %d after a failed start", d.Port)
				}
				return
			}
			testkit.Reap(t, cmd)
			if got != int64(cmd.Process.Pid) {
				t.Errorf("row holds PID %d, want the started %d", got, cmd.Process.Pid)
			}
			if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
				t.Errorf("started process is not running: %v", err)
			}
		})
	}
}

// TestStartPortServedByAnother: a port that answers /ping from another
// process (here the first deployment's java) is not taken for the started
// java's, whose PID a test would then stop or kill: Start fails, names the
// process that answers and records nothing.
func TestStartPortServedByAnother(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	first, p := h.Run(steamfixture.Spec{Name: "churn", LogicalName: "churn"})
	second := h.Add(steamfixture.Spec{Name: "fraud", LogicalName: "fraud", Port: int(first.Port)})
	cmd, err := h.Fixture.Start(h.Java, second, nil)
	if err == nil {
		testkit.Reap(t, cmd)
		t.Fatalf("Start of a second java on port %d answered by PID %d succeeded", first.Port, p.Pid)
	}
	if want := fmt.Sprintf("from PID %d (", p.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("Start = %v, want it to name %q", err, want)
	}
	if got := h.Deployment(second.ID).PID; got != 0 {
		t.Errorf("row holds PID %d after a failed start, want 0", got)
	}
}

func TestSetPID(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t, steamfixture.Options{Lax: true})
	d := h.Add(steamfixture.Spec{Name: "churn", LogicalName: "churn"})
	for _, tc := range []struct {
		name string
		row  string // SQL value written first
		pid  int
		want int64
	}{
		{name: "from 0", row: "0", pid: 100, want: 100},
		{name: "from another PID", row: "77", pid: 100, want: 100},
		{name: "from NULL", row: "NULL", pid: 100, want: 100},
		{name: "from text", row: "'n/a'", pid: 100, want: 100},
		{name: "to 0", row: "77", pid: 0, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.Exec(`UPDATE service SET process_id = `+tc.row+` WHERE id = ?`, d.ID)
			if err := h.SetPID(d.ID, tc.pid); err != nil {
				t.Fatal(err)
			}
			if got := h.Deployment(d.ID).PID; got != tc.want {
				t.Errorf("row holds %d, want %d", got, tc.want)
			}
		})
	}
	if err := h.SetPID(d.ID+1, 100); err == nil {
		t.Error("SetPID of a missing row succeeded")
	}
}

// Ports come from below the ephemeral range, where no outgoing connection
// can take one before its deployment binds it.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 50 {
		port, err := steamfixture.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < 10000 || port >= steamfixture.EphemeralStart() {
			t.Fatalf("port %d outside [10000, %d)", port, steamfixture.EphemeralStart())
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
}

// Two processes walking the same ports get different ones, as two test
// packages whose random starts meet would (testkit turns reserving on).
func TestFreePortAcrossProcesses(t *testing.T) {
	const n = 20
	if from := os.Getenv("STEAMFIXTURE_PORTS_FROM"); from != "" {
		start, err := strconv.ParseInt(from, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		steamfixture.NextPort.Store(start)
		fmt.Println(freePorts(t, n))
		_, _ = io.Copy(io.Discard, os.Stdin) // holds the ports until the parent is done
		return
	}
	start := steamfixture.NextPort.Load() + 1000 // ahead of any port this process handed out
	other := exec.Command(os.Args[0], "-test.run=^TestFreePortAcrossProcesses$")
	other.Env = append(os.Environ(), fmt.Sprintf("STEAMFIXTURE_PORTS_FROM=%d", start))
	other.Stderr = os.Stderr
	stdin, err := other.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := other.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = other.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the other process's ports: %v", err)
	}
	theirs := map[string]bool{}
	for _, p := range strings.Fields(strings.Trim(line, "[]\n")) {
		theirs[p] = true
	}
	if len(theirs) != n {
		t.Fatalf("the other process printed %q, want %d ports", line, n)
	}

	steamfixture.NextPort.Store(start)
	for _, p := range freePorts(t, n) {
		if theirs[strconv.Itoa(p)] {
			t.Errorf("port %d handed to both processes", p)
		}
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		port, err := steamfixture.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, port)
	}
	return ports
}
