package steamfixture

import (
	"context"
	"fmt"
	"strings"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/steam-overseer/steam-overseer/internal/printable"
	"github.com/steam-overseer/steam-overseer/internal/procid"
)

// checkListener fails unless pid itself listens on port: an answer to
// /ping proves only that something does, and a test that then stops or
// kills pid would be probing another process.
func checkListener(ctx context.Context, pid, port int) error {
	in, err := procid.NewInspector("")
	if err != nil {
		return err
	}
	if in.ListensOn(ctx, pid, port) {
		return nil
	}
	return fmt.Errorf("port %d answers, but from %s, not from the java started (PID %d)", port, listenerOf(ctx, in, port), pid)
}

// listenerOf names the process that listens on port, for the error.
func listenerOf(ctx context.Context, in *procid.Inspector, port int) string {
	pids, err := in.Listeners(ctx, port)
	switch {
	case err != nil:
		return fmt.Sprintf("an unknown process (%v)", err)
	case len(pids) == 0:
		return "a process that no longer listens"
	case pids[0] == 0:
		return "a process we cannot read"
	}
	argv := "?"
	if args, err := (&process.Process{Pid: int32(pids[0])}).CmdlineSliceWithContext(ctx); err == nil {
		argv = printable.Escape(strings.Join(args, " "))
	}
	return fmt.Sprintf("PID %d (%s)", pids[0], argv)
}
