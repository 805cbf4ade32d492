package steamfixture

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// FreePort returns a TCP port that was free a moment ago, from below the
// kernel's ephemeral range: one inside it can become the local port of any
// outgoing connection before the deployment binds it. With ReservationsEnv
// set, a port another process handed out is skipped, bound yet or not.
func FreePort() (int, error) {
	f, err := reservations()
	if err != nil {
		return 0, err
	}
	low, high := firstPort, EphemeralStart()
	for range min(100, max(high-low, 0)) {
		port := low + int(nextPort.Add(1)%int64(high-low))
		if !reserve(f, port) {
			continue
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port)); err == nil {
			ln.Close()
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// firstPort stays clear of the well-known services' ports (Prometheus' 9090).
const firstPort = 10000

// nextPort starts at random, so that two processes rarely walk the same ports.
var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(1 << 30))
	return &n
}()

// ReservationsEnv, set in a process's environment, names the file in which
// FreePort reserves the ports it hands out and skips those other processes
// reserved. testkit sets it, for the tests and the demos they run side by
// side; a demo run by hand does without and leaves nothing behind.
const ReservationsEnv = "STEAM_OVERSEER_PORT_RESERVATIONS"

// reservations is that file, whose byte n the process FreePort handed port n
// to locks until it exits; nil without the variable.
var reservations = sync.OnceValues(func() (*os.File, error) {
	path := os.Getenv(ReservationsEnv)
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the port reservations ($%s): %w", ReservationsEnv, err)
	}
	return f, nil
})

// reserve locks port's byte with an open file description lock, which no
// other close in this process can drop; false if another process holds it.
func reserve(f *os.File, port int) bool {
	if f == nil {
		return true
	}
	lock := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: int64(port), Len: 1}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lock)
	return !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES)
}

// EphemeralStart is the first port the kernel picks for outgoing connections.
var EphemeralStart = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return firstPort
	}
	var low int
	if _, err := fmt.Sscan(string(b), &low); err != nil {
		return firstPort
	}
	return low
})
