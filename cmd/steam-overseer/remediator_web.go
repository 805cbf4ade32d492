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

// checkAuthSettings: basic auth and the bearer token share one
// Authorization header, so together every webhook would get 401.
func checkAuthSettings(webConfigFile, tokenFile string) error {
	if webConfigFile == "" {
		return nil
	}
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

func reloadOnHangup(ctx context.Context, logger *slog.Logger, tf *webhook.TokenFile) {
	if tf == nil {
		onHangup(ctx, logger, "without --webhook.bearer-token-file", nil)
		return
	}
	onHangup(ctx, logger, "", func() { _ = tf.Reload("SIGHUP") }) // logged and counted by Reload
}

// remediatorRoutes answer 404 off their paths: a mistyped Alertmanager URL
// must fail loudly, not get the landing page's 200.
func remediatorRoutes(hook, metrics, landing http.Handler, ready func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/webhook", hook)
	mux.Handle("GET /metrics", metrics)
	handleHealth(mux, ready)
	mux.Handle("GET /{$}", landing)
	return mux
}
