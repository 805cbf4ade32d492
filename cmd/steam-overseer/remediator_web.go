package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/steam-overseer/steam-overseer/remediate/webhook"
)

// checkAuthSettings refuses a bearer token together with basic_auth_users
// in the web config file: exporter-toolkit demands basic auth in the same
// Authorization header the token comes in, so every webhook would be
// refused with 401 by one or the other.
func checkAuthSettings(webConfigFile, tokenFile string) error {
	if webConfigFile == "" {
		return nil
	}
	// Checked now, as exporter-toolkit checks it, so that a broken file
	// stops the remediator before it starts remediating.
	if err := web.Validate(webConfigFile); err != nil {
		return fmt.Errorf("checking --web.config.file %s: %w", webConfigFile, err)
	}
	if tokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(webConfigFile)
	if err != nil {
		return fmt.Errorf("reading --web.config.file: %w", err)
	}
	var c web.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("parsing --web.config.file %s: %w", webConfigFile, err)
	}
	if len(c.Users) > 0 {
		return fmt.Errorf("--webhook.bearer-token-file is set and --web.config.file %s has basic_auth_users; "+
			"both need the Authorization header, so every webhook would be refused: "+
			"remove basic_auth_users from %s, or drop --webhook.bearer-token-file", webConfigFile, webConfigFile)
	}
	return nil
}

// reloadOnHangup re-reads the bearer token at every SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, logger *slog.Logger, tf *webhook.TokenFile) {
	if tf == nil {
		onHangup(ctx, logger, "without --webhook.bearer-token-file", nil)
		return
	}
	onHangup(ctx, logger, "", func() { _ = tf.Reload("SIGHUP") }) // logged and counted by Reload
}

// remediatorRoutes are the remediator's HTTP routes. Each answers only its
// own methods (405 with Allow, from ServeMux's method patterns; the webhook
// answers its own) and any other path is 404: a mistyped Alertmanager URL
// must fail loudly, not be answered 200 by the landing page.
func remediatorRoutes(hook, metrics, landing http.Handler, ready func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/webhook", hook)
	mux.Handle("GET /metrics", metrics)
	handleHealth(mux, ready)
	mux.Handle("GET /{$}", landing)
	return mux
}
