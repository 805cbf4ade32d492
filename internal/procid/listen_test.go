package procid_test

import (
	"context"
	"net"
	"os"
	"slices"
	"testing"
)

// TestListenersOfEveryFamily: a socket listening on IPv4 loopback or on the
// IPv6 any-address (as a JVM listens) is found with its owner; a connection
// to the port is not a listener of it, and a closed one is gone.
func TestListenersOfEveryFamily(t *testing.T) {
	in := inspector(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, network, address string }{
		{"IPv4 loopback", "tcp4", "127.0.0.1:0"},
		{"IPv6 any", "tcp", ":0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if pids, err := in.Listeners(ctx, port); err != nil || !slices.Equal(pids, []int{os.Getpid()}) {
				t.Errorf("Listeners(%d) = %v, %v; want this process", port, pids, err)
			}
			if !in.ListensOn(ctx, os.Getpid(), port) || in.ListensOn(ctx, 1, port) {
				t.Errorf("ListensOn(%d) is wrong about this process or PID 1", port)
			}
			ln.Close()
			if pids, err := in.Listeners(ctx, port); err != nil || len(pids) != 0 {
				t.Errorf("after close: Listeners(%d) = %v, %v; want none", port, pids, err)
			}
		})
	}
}
