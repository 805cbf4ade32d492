package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/internal/printable"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/remediate"
)

func init() { register(reconcileCommand) }

type reconcileFlags struct {
	location
	once, dryRun bool
	interval     time.Duration
	engine       engineFlags
}

func reconcileCommand(app *kingpin.Application) []subcommand {
	f := &reconcileFlags{}
	cmd := app.Command("reconcile", "Sweep every deployment and bring back the dead ones, with the remediator's locks, checks and restart policy: the drop-in for the old cron job.")
	addLocationFlags(cmd, &f.location, "The unpacked Steam release whose deployments are reconciled.",
		"holding the journal and the restart policy")
	cmd.Flag("once", "Sweep once and exit: 0 when every deployment Steam wants running runs, 1 when one stayed down. "+
		"Before exiting it waits out the --remediate.watch-after-ready of every deployment it restarted; one that died meanwhile counts as down.").
		BoolVar(&f.once)
	cmd.Flag("dry-run", "Say what a sweep would do and change nothing (implies --once).").
		BoolVar(&f.dryRun)
	cmd.Flag("reconcile.interval", "Time between two sweeps without --once.").
		Default("30s").DurationVar(&f.interval)
	addEngineFlags(cmd, &f.engine)
	return []subcommand{{clause: cmd, run: func(ctx context.Context, logger *slog.Logger) int {
		return runReconcile(ctx, logger, f, os.Stdout)
	}}}
}

func runReconcile(ctx context.Context, logger *slog.Logger, f *reconcileFlags, out io.Writer) int {
	home, statePath, err := f.resolve()
	if err != nil {
		return fail("", err)
	}
	loop := !f.once && !f.dryRun
	if loop {
		onHangup(ctx, logger, "(every sweep reads Steam's database afresh)", nil)
		logger.Info("Reconciling Steam home", "steam_home", home.Dir)
	}
	// A dry run reads the state database but must not create it.
	var st *state.DB
	if f.dryRun {
		st, err = openStateReadOnly(ctx, home, statePath)
		if errors.Is(err, state.ErrNoState) {
			st, err = state.OpenMemory(ctx)
		}
	} else {
		st, err = openState(ctx, home, statePath)
	}
	if err != nil {
		return failUnlessStopped(ctx, logger, "opening the state database", err)
	}
	defer st.Close()
	cfg := f.engine.config(home, st)
	if loop {
		cfg.ReconcileInterval = f.interval
	}
	engine, err := remediate.New(cfg, logger, nil)
	if err != nil {
		return fail("invalid remediation settings", err)
	}
	// Deferred after st.Close, so run before it: the engine's remediations end
	// before the state database closes.
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), remediatorShutdownGrace)
		defer cancel()
		if err := engine.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			logger.Error("Stopping remediation failed", "err", err)
		}
	}()
	if loop {
		if err := engine.Start(ctx); err != nil {
			return failUnlessStopped(ctx, logger, "starting remediation", err)
		}
		<-ctx.Done()
		return 0
	}
	outcomes, err := engine.Sweep(ctx, f.dryRun)
	if err != nil && len(outcomes) == 0 {
		return fail("listing deployments", err)
	}
	if err != nil {
		logger.Warn("Sweep interrupted; the deployments left are not remediated", "err", err)
	}
	if !f.dryRun {
		if outcomes, err = engine.WaitWatched(ctx, outcomes); err != nil {
			logger.Warn("Watch windows of restarted deployments not settled; the next remediation settles them", "err", err)
		}
	}
	if down := printOutcomes(out, outcomes); down > 0 {
		return 1
	}
	return 0
}

func printOutcomes(w io.Writer, outcomes []remediate.Outcome) (down int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tACTION\tRESULT\tOLD PID\tNEW PID\tREASON")
	for _, o := range outcomes {
		if o.Down() {
			down++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", o.DeploymentID,
			printable.Quote(o.Deployment), o.Action, o.Result, o.OldPID, o.NewPID, printable.Quote(o.Why()))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d deployments, %d down\n", len(outcomes), down)
	return down
}
