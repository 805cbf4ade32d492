package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/probe"
)

// probeFlags are the --probe.* flags; each command adds the ones it uses.
type probeFlags struct {
	enabled    bool
	path       string
	timeout    time.Duration
	interval   time.Duration
	startGrace time.Duration
}

// addRequestFlags adds how one probe is made: --probe.path, --probe.timeout.
func (f *probeFlags) addRequestFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("probe.path", "Path of the HTTP GET that a serving deployment answers with 200.").
		Default(probe.DefaultPath).StringVar(&f.path)
	cmd.Flag("probe.timeout", "How long one probe of a deployment may take.").
		Default(probe.DefaultTimeout.String()).DurationVar(&f.timeout)
}

// checkTimeout refuses a timeout no probe could meet.
func (f *probeFlags) checkTimeout() error {
	if f.timeout <= 0 {
		return fmt.Errorf("--probe.timeout (%s) must be positive", f.timeout)
	}
	return nil
}

// addExporterFlags adds the request flags and the background prober's.
func (f *probeFlags) addExporterFlags(cmd *kingpin.CmdClause) {
	cmd.Flag("probe.enabled", "Probe every verified running deployment over HTTP in the background.").
		Default("true").BoolVar(&f.enabled)
	f.addRequestFlags(cmd)
	cmd.Flag("probe.interval", "How often every running deployment is probed.").
		Default(probe.DefaultInterval.String()).DurationVar(&f.interval)
	f.addStartGraceFlag(cmd)
}

// addStartGraceFlag adds --probe.start-grace, which the exporter publishes
// for the alert rule and the remediator obeys, so both must mean the same.
func (f *probeFlags) addStartGraceFlag(cmd *kingpin.CmdClause) {
	cmd.Flag("probe.start-grace", "How long a started deployment may fail its probes before it counts as unresponsive: no alert fires and no remediator stops it sooner (model loading is slow).").
		Default(probe.DefaultStartGrace.String()).DurationVar(&f.startGrace)
}

// startProber runs the exporter's background prober and returns the
// collectors of its results (probes, then /stats and JVM counters read in
// the same round), and stop, which ends the prober and waits for it.
// Disabled, it returns no collector.
func startProber(ctx context.Context, logger *slog.Logger, f probeFlags, obs *observe.Observer,
	procRoot string) (cs []prometheus.Collector, stop func(), err error) {
	if !f.enabled {
		logger.Info("Probing deployments is disabled")
		return nil, func() {}, nil
	}
	if f.interval <= 0 || f.startGrace < 0 {
		return nil, nil, fmt.Errorf("--probe.interval (%s) must be positive and --probe.start-grace (%s) not negative",
			f.interval, f.startGrace)
	}
	if err := f.checkTimeout(); err != nil {
		return nil, nil, err
	}
	if procRoot == "" {
		procRoot = "/proc"
	}
	readErrors := collector.NewReadErrors()
	inside := collector.NewInside(procRoot, f.timeout, readErrors, logger)
	p := probe.NewProber(probe.ObservedTargets(obs), probe.Config{
		Path: f.path, Timeout: f.timeout, Interval: f.interval, After: inside.Read,
	}, logger)
	deployments := func() []collector.RunningDeployment { return inside.Of(p.Latest()) }
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx) })
	logger.Info("Probing running deployments", "path", f.path, "interval", f.interval, "timeout", f.timeout)
	return []prometheus.Collector{
			collector.NewProbeCollector(p, f.startGrace),
			collector.NewTrafficCollector(deployments),
			collector.NewJVMCollector(deployments),
			readErrors,
		}, func() {
			cancel()
			wg.Wait()
		}, nil
}
