package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/status"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

func init() { register(statusCommand) }

func statusCommand(app *kingpin.Application) []subcommand {
	cmd := app.Command("status", "Print every deployment's status, uptime, restarts, predictions per second, heap use and last remediation.")
	var loc location
	addLocationFlags(cmd, &loc, "The unpacked Steam release whose deployments are listed.",
		"read for restarts and actions")
	var procRoot string
	addProcfsFlag(cmd, &procRoot)
	output := cmd.Flag("output", "Output format: table or json.").Default("table").Enum("table", "json")
	var probes probeFlags
	probes.addRequestFlags(cmd)
	return []subcommand{{clause: cmd, run: func(ctx context.Context, logger *slog.Logger) int {
		return runStatus(ctx, logger, os.Stdout, loc, procRoot, *output, probes)
	}}}
}

// runStatus exits 0 whenever it read the registry: alerting is Prometheus's
// job. A missing state database only blanks the history columns.
func runStatus(ctx context.Context, logger *slog.Logger, stdout io.Writer, loc location, procRoot, output string,
	probes probeFlags) int {
	if err := probes.checkTimeout(); err != nil {
		return usageError(err)
	}
	home, statePath, err := loc.resolve()
	if err != nil {
		return fail("", err)
	}
	inspector, err := procid.NewInspector(procRoot)
	if err != nil {
		return fail("reading processes", err)
	}
	now := time.Now()
	rows, err := status.Rows(ctx, steam.NewRegistry(home), inspector, now)
	if err != nil {
		return fail("reading Steam's deployments in "+home.Dir, err)
	}
	status.AddProbes(ctx, rows, probes.path, probes.timeout)
	status.AddInside(ctx, rows, cmp.Or(procRoot, "/proc"), probes.timeout)
	st, err := openStateReadOnly(ctx, home, statePath)
	var mismatch *state.HomeMismatchError
	switch {
	case errors.As(err, &mismatch):
		return fail("", err)
	case errors.Is(err, state.ErrNoState):
		logger.Debug("No state database yet", "path", statePath)
	case err != nil:
		logger.Warn("Cannot open the state database, restarts and actions unknown", "path", statePath, "err", err)
	default:
		err = status.AddHistory(ctx, rows, st)
		st.Close()
		if err != nil {
			logger.Warn("Reading the state database failed, restarts and actions unknown", "path", statePath, "err", err)
		}
	}
	if output == "json" {
		err = status.WriteJSON(stdout, rows)
	} else {
		err = status.WriteTable(stdout, rows, now)
	}
	if err != nil {
		return fail("writing status", err)
	}
	return 0
}
