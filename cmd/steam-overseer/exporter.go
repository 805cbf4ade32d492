package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

func init() { register(exporterCommand) }

func exporterCommand(app *kingpin.Application) []subcommand {
	cmd := app.Command("exporter", "Serve Prometheus metrics about the deployments of a Steam home.")
	var loc location
	addLocationFlags(cmd, &loc, "The unpacked Steam release whose deployments are watched.",
		"read for restart counts and backups")
	var procRoot string
	addProcfsFlag(cmd, &procRoot)
	webConfig := kingpinflag.AddFlags(cmd, ":9732")
	metricsPath := cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").
		Default("/metrics").String()
	var probes probeFlags
	probes.addExporterFlags(cmd)
	var watch watchFlags
	watch.addFlags(cmd)
	memoryLimit := cmd.Flag("runtime.memory-limit", "Soft limit of the exporter's Go memory, as GOMEMLIMIT (which wins if set); 0: none. "+
		"Below what a scrape needs plus the runtime's own, the GC runs without pause.").Default("0").Bytes()
	return []subcommand{{clause: cmd, run: func(ctx context.Context, logger *slog.Logger) int {
		return runExporter(ctx, logger, loc, procRoot, webConfig, *metricsPath, probes, watch, int64(*memoryLimit))
	}}}
}

func runExporter(ctx context.Context, logger *slog.Logger, loc location, procRoot string, webConfig *web.FlagConfig,
	metricsPath string, probes probeFlags, watch watchFlags, memoryLimit int64) int {
	logger.Info("Starting steam-overseer exporter", "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	home, statePath, err := loc.resolve()
	if err != nil {
		return fail("", err)
	}
	// Checked once: the collector reads the state database at every scrape.
	if err := refuseOtherHomesState(ctx, home, statePath); err != nil {
		return failUnlessStopped(ctx, logger, "checking the state database", err)
	}
	inspector, err := procid.NewInspector(procRoot)
	if err != nil {
		return fail("reading processes", err)
	}

	reg, stopProber, err := exporterMetrics(ctx, logger, home, statePath, inspector, probes, procRoot)
	if err != nil {
		return usageError(err)
	}
	defer stopProber()
	stopWatch, err := startExitWatch(ctx, logger, watch, home, inspector, reg)
	if err != nil {
		return watchFailed(err)
	}
	defer stopWatch()

	mux := http.NewServeMux()
	handleHealth(mux, func() bool { return ctx.Err() == nil })
	if memoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	mux.Handle(metricsPath, reg.Handler(logger))
	if metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "steam-overseer exporter",
			Description: "Health and resource use of H2O Steam deployments",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
			},
		})
		if err != nil {
			return fail("building the landing page", err)
		}
		mux.Handle("/", landing)
	}

	// Every scrape rereads the home and exporter-toolkit its web config.
	onHangup(ctx, logger, "(every scrape reads Steam's database afresh)", nil)
	logger.Info("Watching Steam home", "steam_home", home.Dir, "state_path", statePath)
	if err := serve(ctx, logger, webConfig, mux); err != nil {
		return fail("serving metrics", err)
	}
	return 0
}

// exporterMetrics registers what the exporter publishes and starts the
// prober; stop ends it.
func exporterMetrics(ctx context.Context, logger *slog.Logger, home steam.Home, statePath string,
	inspector *procid.Inspector, probes probeFlags, procRoot string) (reg *inTurn, stop func(), err error) {
	deployments := collector.New(exporterRegistry(home), inspector, statePath, logger)
	reg = newInTurn()
	reg.MustRegister(
		deployments,
		versioncollector.NewCollector(collector.Namespace+"_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	probeCollectors, stop, err := startProber(ctx, logger, probes, deployments.Observer(), procRoot)
	if err != nil {
		return nil, nil, err
	}
	reg.MustRegister(probeCollectors...)
	return reg, stop, nil
}

// scrapeBusyTimeout plus the state database's 5 s stay under Prometheus's
// 10 s scrape timeout: a locked database shows as scrape_success 0.
const scrapeBusyTimeout = 3 * time.Second

func exporterRegistry(home steam.Home) *steam.Registry {
	r := steam.NewRegistry(home)
	r.BusyTimeout = scrapeBusyTimeout
	return r
}
