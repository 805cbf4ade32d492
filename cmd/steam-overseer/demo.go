package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/demo"
	"github.com/steam-overseer/steam-overseer/demo/jetty"
)

func init() {
	register(demoCommand)
	linkNames[demo.FakeJavaName] = []string{"demo", "scorer", "--"}
}

func demoCommand(app *kingpin.Application) []subcommand {
	cfg := demo.Config{Out: os.Stdout}
	cmd := app.Command("demo", "Show the whole loop on this machine: a throwaway Steam home, three deployments, the exporter and the remediator, and Prometheus and Alertmanager when installed. Kill a deployment and watch it come back.")
	cmd.Flag("exporter.listen-address", "Where the demo's exporter listens.").
		Default("127.0.0.1:9732").StringVar(&cfg.ExporterAddr)
	cmd.Flag("remediator.listen-address", "Where the demo's remediator listens.").
		Default("127.0.0.1:9733").StringVar(&cfg.RemediatorAddr)
	cmd.Flag("prometheus.listen-address", "Where the demo's Prometheus listens (when installed).").
		Default("127.0.0.1:9090").StringVar(&cfg.PrometheusAddr)
	cmd.Flag("alertmanager.listen-address", "Where the demo's Alertmanager listens (when installed).").
		Default("127.0.0.1:9093").StringVar(&cfg.AlertmanagerAddr)
	cmd.Flag("healer", "What brings a killed deployment back: alertmanager (Prometheus and Alertmanager, the production loop), reconcile (the remediator's periodic sweep), or auto (alertmanager when installed).").
		Default(demo.HealerAuto).EnumVar(&cfg.Healer, demo.HealerAuto, demo.HealerAlertmanager, demo.HealerReconcile)
	cmd.Flag("jetty", "Run the deployments on real Jetty 9.4 under the real java (needs Debian's "+jetty.Packages+"), compiled at start, instead of the built-in fake scoring service.").
		BoolVar(&cfg.Jetty)
	cmd.Flag("keep", "Keep the demo's Steam home when it ends.").BoolVar(&cfg.Keep)
	runCmd := cmd.Command("run", "Run the demo (the default).").Default()
	// The demo's deployments run this binary linked as bin/java: procid
	// verifies a deployment by its argv, which must start with java.
	var javaArgs []string
	scorer := cmd.Command("scorer", "Serve as the demo's fake scoring service, given Steam's java arguments after --.").Hidden()
	scorer.Arg("java-args", "").StringsVar(&javaArgs)
	return []subcommand{{clause: scorer, run: func(context.Context, *slog.Logger) int {
		return demo.FakeJava(javaArgs)
	}}, {clause: runCmd, run: func(ctx context.Context, logger *slog.Logger) int {
		exe, err := os.Executable()
		if err != nil {
			return fail("finding this program's path", err)
		}
		cfg.Exe, cfg.Command, cfg.Logger = exe, operatorCommand(exe), logger
		onHangup(ctx, logger, "(the demo is configured by its flags only)", nil)
		if err := demo.Run(ctx, cfg); err != nil {
			return fail("running the demo", err)
		}
		return 0
	}}}
}

// operatorCommand: `go run` builds into a temporary folder deleted on exit,
// so that is named as the command instead.
func operatorCommand(exe string) string {
	if filepath.Base(filepath.Dir(exe)) == "exe" && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/steam-overseer"
	}
	return exe
}
