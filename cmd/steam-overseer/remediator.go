package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/remediate"
	"github.com/steam-overseer/steam-overseer/remediate/webhook"
)

func init() { register(remediatorCommand) }

// remediatorShutdownGrace: longer remediations are abandoned, which is
// safe: the next remediation adopts what they left.
const remediatorShutdownGrace = 10 * time.Second

type remediatorFlags struct {
	location

	web               *web.FlagConfig
	alertNames        []string
	match             map[string]string
	maxBody           int64
	tokenFile         string
	tokenPoll         time.Duration
	engine            engineFlags
	reconcileInterval time.Duration
	journalRetention  model.Duration
	resetID           string
}

// engineFlags are shared by the remediator and reconcile.
type engineFlags struct {
	concurrency     int
	startTimeout    time.Duration
	watchAfterReady time.Duration
	javaPath        string
	javaOpts        string
	procRoot        string
	probes          probeFlags
	hungAfter       time.Duration
}

func addEngineFlags(cmd *kingpin.CmdClause, f *engineFlags) {
	cmd.Flag("remediate.concurrency", "Deployments remediated at once.").
		Default(fmt.Sprint(remediate.DefaultConcurrency)).IntVar(&f.concurrency)
	cmd.Flag("remediate.start-timeout", "How long a restarted deployment has to answer /ping before it is stopped and counted as failed.").
		Default(remediate.DefaultStartTimeout.String()).DurationVar(&f.startTimeout)
	cmd.Flag("remediate.watch-after-ready", "How long a restarted deployment must stay up once it answers /ping for its start to count as successful; dying sooner counts as a failed start.").
		Default(remediate.DefaultWatchAfterReady.String()).DurationVar(&f.watchAfterReady)
	cmd.Flag("java.path", "The java to start deployments with (default: java on PATH).").
		StringVar(&f.javaPath)
	cmd.Flag("java.opts", "JVM options put before -jar, split at spaces (no shell), e.g. \"-Xmx2g -XX:+UseG1GC\".").
		StringVar(&f.javaOpts)
	addProcfsFlag(cmd, &f.procRoot)
	f.probes.addRequestFlags(cmd)
	f.probes.addStartGraceFlag(cmd)
	cmd.Flag("remediate.hung-after", "A live deployment is stopped as unresponsive only after its probes failed in a row for at least this long.").
		Default(remediate.DefaultHungAfter.String()).DurationVar(&f.hungAfter)
}

func (f engineFlags) config(home steam.Home, st *state.DB) remediate.Config {
	return remediate.Config{
		Home:            home,
		State:           st,
		JavaPath:        f.javaPath,
		JavaOpts:        strings.Fields(f.javaOpts),
		Concurrency:     f.concurrency,
		StartTimeout:    f.startTimeout,
		WatchAfterReady: f.watchAfterReady,
		ProcRoot:        f.procRoot,
		ProbePath:       f.probes.path,
		ProbeTimeout:    f.probes.timeout,
		StartGrace:      noneIfZero(f.probes.startGrace),
		HungAfter:       f.hungAfter,
	}
}

func remediatorCommand(app *kingpin.Application) []subcommand {
	f := &remediatorFlags{match: map[string]string{}} // StringMapVar panics on a nil map
	cmd := app.Command("remediator", "Restart dead deployments when Alertmanager calls, and record their new PIDs in Steam's database.")
	addLocationFlags(cmd, &f.location, "The unpacked Steam release whose deployments are remediated.",
		"holding the journal and the restart policy")

	// Flags of remediator itself, so `remediator --help` shows them.
	f.web = kingpinflag.AddFlags(cmd, "127.0.0.1:9733")
	cmd.Flag("webhook.alertname", "Alert name acted on; repeat for several (default: "+strings.Join(webhook.DefaultAlertNames, ", ")+").").
		Default(webhook.DefaultAlertNames...).StringsVar(&f.alertNames)
	cmd.Flag("webhook.match", "Label every acted-on alert must carry, as name=value; repeat for several (e.g. instance=steam1:9732).").
		StringMapVar(&f.match)
	maxBody := cmd.Flag("webhook.max-body", "Largest webhook body accepted.").
		Default("1MiB").Bytes()
	cmd.Flag("webhook.bearer-token-file", "File holding the token Alertmanager must send as \"Authorization: Bearer\" (its authorization.credentials_file); not readable by others. Re-read on SIGHUP and when it changes.").
		StringVar(&f.tokenFile)
	cmd.Flag("webhook.bearer-token-poll-interval", "How often the bearer token file is checked for changes (0 turns checking off; SIGHUP still reloads it).").
		Default(webhook.DefaultTokenPollInterval.String()).DurationVar(&f.tokenPoll)
	addEngineFlags(cmd, &f.engine)
	cmd.Flag("reconcile.interval", "Also sweep every deployment this often, as a safety net for when Alertmanager cannot reach the remediator (0 turns it off).").
		Default("0s").DurationVar(&f.reconcileInterval)
	addJournalRetentionFlag(cmd, &f.journalRetention)

	serveCmd := cmd.Command("serve", "Serve Alertmanager's webhook (the default).").Default()
	resetCmd := cmd.Command("reset", "Clear the restart policy of a deployment (failures, backoff, giving up), so that the next notification may start it again.")
	resetCmd.Arg("id", "The deployment's id (service.id, the deployment_id label).").Required().StringVar(&f.resetID)

	return []subcommand{
		{clause: serveCmd, run: func(ctx context.Context, logger *slog.Logger) int {
			f.maxBody = int64(*maxBody)
			return runRemediator(ctx, logger, f)
		}},
		{clause: resetCmd, run: func(ctx context.Context, logger *slog.Logger) int { return runRemediatorReset(ctx, logger, f) }},
	}
}

func openRemediatorState(ctx context.Context, f *remediatorFlags) (steam.Home, *state.DB, error) {
	home, statePath, err := f.resolve()
	if err != nil {
		return steam.Home{}, nil, err
	}
	f.statePath = statePath
	st, err := openState(ctx, home, statePath)
	if err != nil {
		return steam.Home{}, nil, err
	}
	return home, st, nil
}

func runRemediator(ctx context.Context, logger *slog.Logger, f *remediatorFlags) int {
	logger.Info("Starting steam-overseer remediator", "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	if err := checkAuthSettings(*f.web.WebConfigFile, f.tokenFile); err != nil {
		return fail("refusing the web settings", err)
	}
	home, st, err := openRemediatorState(ctx, f)
	if err != nil {
		return failUnlessStopped(ctx, logger, "opening the Steam home or the state database", err)
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("steam_remediator"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var tokenFile *webhook.TokenFile
	var token *webhook.Token
	if f.tokenFile != "" {
		if tokenFile, err = webhook.LoadTokenFile(f.tokenFile, reg, logger); err != nil {
			return fail("reading the webhook's bearer token", err)
		}
		token = tokenFile.Token()
	}
	cfg := f.engine.config(home, st)
	cfg.ReconcileInterval = f.reconcileInterval
	engine, err := remediate.New(cfg, logger, reg)
	if err != nil {
		return fail("invalid remediation settings", err)
	}
	hook, err := webhook.New(webhook.Config{
		AlertNames: f.alertNames,
		Match:      f.match,
		MaxBody:    f.maxBody,
		Token:      token,
		Known:      steam.NewRegistry(home).IDs, // ids only: no war resolved per notification
	}, engine, reg, logger)
	if err != nil {
		return fail("invalid webhook settings", err)
	}
	// In the background: with Steam holding its lock this waits out the busy
	// timeout, and the webhook does without it.
	go func() {
		if err := hook.Refresh(ctx); err != nil {
			logger.Warn("Cannot read Steam's deployments yet", "err", err)
			return
		}
		logger.Debug("Read Steam's deployments ahead of the first notification")
	}()
	if err := engine.Start(ctx); err != nil {
		return failUnlessStopped(ctx, logger, "starting remediation", err)
	}
	// Deferred after st.Close, so stopped before it.
	defer startJournalPruning(ctx, logger, st, time.Duration(f.journalRetention), journalPruneInterval)()

	var shuttingDown atomic.Bool
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "steam-overseer remediator",
		Description: "Restarts dead H2O Steam deployments when Alertmanager calls",
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: "/metrics", Text: "Metrics"},
			{Address: "/webhook", Text: "Webhook", Description: "POST Alertmanager's webhook notifications here"},
			{Address: "/-/healthy", Text: "Health"},
		},
	})
	if err != nil {
		return fail("building the landing page", err)
	}
	mux := remediatorRoutes(hook, metrics, landing, func() bool { return !shuttingDown.Load() })
	if tokenFile != nil && f.tokenPoll > 0 {
		go tokenFile.Watch(ctx, f.tokenPoll)
	}
	reloadOnHangup(ctx, logger, tokenFile)

	// On SIGTERM the webhook answers 503 while the server drains.
	stopHook := context.AfterFunc(ctx, func() {
		shuttingDown.Store(true)
		hook.Shutdown()
	})
	defer stopHook()

	logger.Info("Remediating Steam home", "steam_home", home.Dir, "state_path", f.statePath)
	code := 0
	if err := serve(ctx, logger, f.web, mux); err != nil {
		code = fail("serving the webhook", err)
	}
	shuttingDown.Store(true)
	hook.Shutdown()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), remediatorShutdownGrace)
	defer cancel()
	// Shutdown waits for every remediation before the state database closes.
	if err := engine.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Error("Stopping remediation failed", "err", err)
	}
	logger.Info("Remediator stopped")
	return code
}

// runRemediatorReset: a mistyped id must not be journaled as a reset.
func runRemediatorReset(ctx context.Context, logger *slog.Logger, f *remediatorFlags) int {
	id, err := strconv.ParseInt(f.resetID, 10, 64)
	if err != nil || id <= 0 {
		return usageError(fmt.Errorf("deployment id %q is not a positive integer", f.resetID))
	}
	home, _, err := f.resolve()
	if err != nil {
		return fail("", err)
	}
	switch _, err := steam.NewRegistry(home).Deployment(ctx, id); {
	case errors.Is(err, steam.ErrNotFound):
		return fail("refusing to reset", fmt.Errorf("no deployment %d in Steam's registry", id))
	case err != nil:
		return fail("reading Steam's registry", err)
	}
	home, st, err := openRemediatorState(ctx, f)
	if err != nil {
		return fail("opening the state database", err)
	}
	defer st.Close()
	engine, err := remediate.New(remediate.Config{Home: home, State: st}, logger, nil)
	if err != nil {
		return fail("resetting the restart policy", err)
	}
	if err := engine.Reset(ctx, id); err != nil {
		return fail(fmt.Sprintf("resetting the restart policy of deployment %d", id), err)
	}
	fmt.Printf("Deployment %d: restart policy reset; the next notification may start it again.\n", id)
	return 0
}

// noneIfZero makes a flag's 0 mean "none" where the engine's zero means its default.
func noneIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
