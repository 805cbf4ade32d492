package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/amnotify"
	"github.com/steam-overseer/steam-overseer/internal/exitwatch"
	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// AlertExited is SteamDeploymentDown without scrape, evaluation and hold.
const AlertExited = "SteamDeploymentExited"

type watchFlags struct {
	urls        []string
	labels      map[string]string
	resendDelay time.Duration
	settle      time.Duration
}

func (f *watchFlags) addFlags(cmd *kingpin.CmdClause) {
	f.labels = map[string]string{} // StringMapVar panics on a nil map
	cmd.Flag("alertmanager.url", "Alertmanager to send "+AlertExited+" to the moment a deployment's java exits "+
		"(repeatable: every member of an HA pair). None: the exit watch is off.").StringsVar(&f.urls)
	cmd.Flag("alertmanager.label", "NAME=VALUE label added to every alert sent to Alertmanager, "+
		"like Prometheus' external labels (repeatable), e.g. instance=<host>:9732.").StringMapVar(&f.labels)
	cmd.Flag("alertmanager.resend-delay", "How often alerts that still fire are sent again.").
		Default(amnotify.DefaultResendDelay.String()).DurationVar(&f.resendDelay)
	cmd.Flag("alertmanager.settle", "How long an exit waits for Steam to delete or stop the deployment's row "+
		"(Steam's own stop) before it is sent.").Default(exitwatch.DefaultSettle.String()).DurationVar(&f.settle)
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func (f *watchFlags) check() error {
	for name := range f.labels {
		if !labelName.MatchString(name) {
			return fmt.Errorf("--alertmanager.label: %q is not a label name", name)
		}
		switch name {
		case "alertname", "deployment_id", "deployment", "severity":
			return fmt.Errorf("--alertmanager.label: %q is set by the alert itself", name)
		}
	}
	if f.resendDelay <= 0 || f.settle <= 0 {
		return fmt.Errorf("--alertmanager.resend-delay and --alertmanager.settle must be positive")
	}
	return nil
}

func startExitWatch(ctx context.Context, logger *slog.Logger, f watchFlags, home steam.Home,
	inspector *procid.Inspector, reg prometheus.Registerer) (stop func(), err error) {
	if len(f.urls) == 0 {
		return func() {}, nil
	}
	if err := f.check(); err != nil {
		return nil, usage{err}
	}
	notifier, err := amnotify.New(amnotify.Options{Alertmanagers: f.urls, ResendDelay: f.resendDelay},
		logger.With("component", "notifier"))
	if err != nil {
		return nil, usage{fmt.Errorf("--alertmanager.url: %w", err)}
	}
	registry := steam.NewRegistry(home)
	// A locked database delays one read, not the watch.
	registry.BusyTimeout = time.Second
	watcher, err := exitwatch.New(registry, observe.New(registry, inspector), exitNotifier(notifier, f.labels),
		logger.With("component", "exitwatch"), exitwatch.Options{Settle: f.settle})
	if err != nil {
		return nil, fmt.Errorf("starting the exit watch: %w", err)
	}
	reg.MustRegister(notifier, watcher)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { notifier.Run(ctx) })
	wg.Go(func() { watcher.Run(ctx) })
	logger.Info("Watching deployment exits", "alertmanagers", f.urls, "settle", f.settle)
	return func() { cancel(); wg.Wait() }, nil
}

// usage marks an error of the command line (exit 2).
type usage struct{ error }

func watchFailed(err error) int {
	if errors.As(err, new(usage)) {
		return usageError(err)
	}
	return fail("", err)
}

// exitNotifier labels its alerts as the shipped SteamDeploymentDown.
func exitNotifier(n *amnotify.Notifier, extra map[string]string) func(exitwatch.Event) {
	return func(ev exitwatch.Event) {
		key := strconv.FormatInt(ev.ID, 10)
		if !ev.Down {
			n.Resolve(key)
			return
		}
		labels := map[string]string{}
		maps.Copy(labels, extra)
		maps.Copy(labels, map[string]string{"alertname": AlertExited, "severity": "critical",
			"deployment_id": key, "deployment": ev.Name})
		n.Fire(key, labels, map[string]string{
			"summary": fmt.Sprintf("Steam deployment %s exited.", ev.Name),
			"description": fmt.Sprintf("The java of deployment %s (id %d, PID %d) is gone (%s) while Steam's "+
				"registry still says started. The remediator restarts it.", ev.Name, ev.ID, ev.PID, ev.Reason),
			"runbook_url": "https://github.com/steam-overseer/steam-overseer/blob/main/docs/runbook.md#steamdeploymentdown",
		}, ev.At)
	}
}
