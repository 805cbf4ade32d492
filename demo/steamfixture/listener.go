package steamfixture

import (
	"context"
	"fmt"
	"strings"

	gnet "github.com/shirou/gopsutil/v3/net"
	"github.com/shirou/gopsutil/v3/process"
)

// checkListener fails unless pid itself listens on port: an answer to
// /ping proves only that something does, and a test that then stops or
// kills pid would be probing another process.
func checkListener(ctx context.Context, pid, port int) error {
	conns, err := gnet.ConnectionsPidWithContext(ctx, "tcp", int32(pid))
	if err != nil {
		return fmt.Errorf("reading the sockets of PID %d: %w", pid, err)
	}
	if listensOn(conns, port) {
		return nil
	}
	return fmt.Errorf("port %d answers, but from %s, not from the java started (PID %d)", port, listenerOf(ctx, port), pid)
}

func listensOn(conns []gnet.ConnectionStat, port int) bool {
	for _, c := range conns {
		if c.Status == "LISTEN" && int(c.Laddr.Port) == port {
			return true
		}
	}
	return false
}

// listenerOf names the process that listens on port, for the error.
func listenerOf(ctx context.Context, port int) string {
	conns, err := gnet.ConnectionsWithContext(ctx, "tcp")
	if err != nil {
		return fmt.Sprintf("an unknown process (%v)", err)
	}
	for _, c := range conns {
		if c.Status != "LISTEN" || int(c.Laddr.Port) != port {
			continue
		}
		if c.Pid == 0 {
			return "a process of another user"
		}
		argv := "?"
		if p, err := process.NewProcessWithContext(ctx, c.Pid); err == nil {
			if args, err := p.CmdlineSliceWithContext(ctx); err == nil {
				argv = strings.Join(args, " ")
			}
		}
		return fmt.Sprintf("PID %d (%s)", c.Pid, argv)
	}
	return "a process that no longer listens"
}
