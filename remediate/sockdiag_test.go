package remediate

import (
	"net"
	"os"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
)

func TestListeningSockets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network string
		address string
	}{
		{"IPv4 loopback", "tcp4", "127.0.0.1:0"},
		{"IPv6 any, as a JVM listens", "tcp", ":0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			// A connection to the port is not a listener of it.
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if ok, err := portListening(port); err != nil || !ok {
				t.Errorf("portListening(%d) = %v, %v; want true", port, ok, err)
			}
			if !listensOn(os.Getpid(), port) {
				t.Errorf("listensOn(this process, %d) = false", port)
			}
			if listensOn(1, port) {
				t.Errorf("listensOn(1, %d) = true", port)
			}
			ln.Close()
			if ok, err := portListening(port); err != nil || ok {
				t.Errorf("after close: portListening(%d) = %v, %v; want false", port, ok, err)
			}
		})
	}
	free, err := steamfixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := portListening(free); err != nil || ok {
		t.Errorf("portListening(free port %d) = %v, %v; want false", free, ok, err)
	}
}
