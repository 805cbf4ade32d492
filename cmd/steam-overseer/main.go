// Command steam-overseer watches and heals H2O Steam deployments.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/steam-overseer/steam-overseer/internal/printable"
)

type subcommand struct {
	clause *kingpin.CmdClause
	run    func(ctx context.Context, logger *slog.Logger) int
}

// registrations: each subcommand's file registers itself from init.
var registrations []func(app *kingpin.Application) []subcommand

func register(r func(app *kingpin.Application) []subcommand) {
	registrations = append(registrations, r)
}

// linkNames: a link to this binary under one of these names runs that
// command, as a multi-call binary does; each is declared by its command's file.
var linkNames = map[string][]string{}

func main() { os.Exit(run(os.Args)) }

func run(args []string) int {
	if command, ok := linkNames[filepath.Base(args[0])]; ok {
		args = append(append([]string{args[0]}, command...), args[1:]...)
	}

	app := kingpin.New("steam-overseer", "Watches H2O Steam deployments and restarts the dead ones.")
	app.Version(version.Print("steam-overseer"))
	app.HelpFlag.Short('h')
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)

	var commands []subcommand
	for _, r := range registrations {
		commands = append(commands, r(app)...)
	}
	showBoolDefaults(app)
	manPageOnce.Do(func() { kingpin.ManPageTemplate = manPageTemplate(kingpin.ManPageTemplate) })

	// No command: usage on stderr and exit 2, so a script that lost its
	// arguments fails (kingpin would exit 0).
	if pc, err := app.ParseContext(args[1:]); err == nil && pc.SelectedCommand == nil && !asksForHelp(pc) {
		app.UsageWriter(os.Stderr)
		app.Usage(args[1:])
		return exitUsage
	}
	selected, err := app.Parse(args[1:])
	if err != nil {
		return usageError(err)
	}
	logger := promslog.New(logConfig)
	ctx, stop := interruptContext()
	defer stop()
	for _, c := range commands {
		if c.clause.FullCommand() == selected {
			return c.run(ctx, logger)
		}
	}
	return usageError(fmt.Errorf("unknown command %q", selected))
}

// asksForHelp: --help and its kin, --version, which print and exit 0.
func asksForHelp(pc *kingpin.ParseContext) bool {
	for _, el := range pc.Elements {
		if f, ok := el.Clause.(*kingpin.FlagClause); ok {
			switch f.Model().Name {
			case "help", "help-long", "help-man", "version",
				"completion-bash", "completion-script-bash", "completion-script-zsh":
				return true
			}
		}
	}
	return false
}

// showBoolDefaults: kingpin shows --[no-]name, never whether it is on.
func showBoolDefaults(app *kingpin.Application) {
	mark := func(get func(string) *kingpin.FlagClause, flags []*kingpin.FlagModel) {
		for _, m := range flags {
			if !m.IsBoolFlag() || m.Name == "help" || m.Name == "version" {
				continue
			}
			def := "off"
			if len(m.Default) > 0 && m.Default[0] == "true" {
				def = "on"
			}
			get(m.Name).Help(fmt.Sprintf("%s (default: %s)", m.Help, def))
		}
	}
	mark(app.GetFlag, app.Model().Flags)
	for _, c := range app.Model().FlattenedCommands() {
		path := strings.Fields(c.FullCommand)
		cmd := app.GetCommand(path[0])
		for _, name := range path[1:] {
			cmd = cmd.GetCommand(name)
		}
		mark(cmd.GetFlag, c.Flags)
	}
}

// manPageOnce: kingpin's template is a global, and tests call run side by side.
var manPageOnce sync.Once

// manPageTemplate puts one word in the header, a description in NAME for
// whatis, and every command's flags, not only leaf commands'.
func manPageTemplate(t string) string {
	t = strings.Replace(t, `.TH {{.App.Name}} 1 {{.App.Version}} "{{.App.Author}}"`,
		fmt.Sprintf(`.TH STEAM-OVERSEER 1 "" "steam-overseer %s" "User Commands"`, version.Version), 1)
	t = strings.Replace(t, ".SH \"NAME\"\n{{.App.Name}}\n", ".SH \"NAME\"\n{{.App.Name}} \\- {{.App.Help}}\n", 1)
	t = strings.Replace(t, "{{range .FlattenedCommands -}}", "{{range .Commands -}}", 1)
	return strings.Replace(t, "{{template \"FormatFlags\" . -}}\n{{end -}}\n{{end -}}\n{{end -}}",
		"{{template \"FormatFlags\" . -}}\n{{template \"FormatCommands\" . -}}\n{{end -}}\n{{end -}}\n{{end -}}", 1)
}

// Exit codes, as Prometheus' own tools use them.
const (
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong: nothing was done
)

// fail prints "steam-overseer: <what failed>: <why>" on stderr, without
// the log decoration, and returns 1.
func fail(what string, err error) int {
	if what == "" {
		fmt.Fprintf(os.Stderr, "steam-overseer: %s\n", oneLine(err))
	} else {
		fmt.Fprintf(os.Stderr, "steam-overseer: %s: %s\n", what, oneLine(err))
	}
	return exitFailure
}

// failUnlessStopped: a daemon told to stop while it starts has not failed,
// and systemd counts only exit 0 after SIGTERM as a clean stop.
func failUnlessStopped(ctx context.Context, logger *slog.Logger, what string, err error) int {
	if ctx.Err() != nil {
		logger.Info("Stopped while starting", "step", what, "err", err)
		return 0
	}
	return fail(what, err)
}

func usageError(err error) int {
	fmt.Fprintf(os.Stderr, "steam-overseer: %s (see steam-overseer --help)\n", oneLine(err))
	return exitUsage
}

// oneLine keeps an error's sentence to one line and escapes what could act
// on the terminal.
func oneLine(err error) string {
	return printable.Escape(strings.Join(strings.Fields(err.Error()), " "))
}

// interruptContext: after the first SIGINT or SIGTERM the default action
// is restored, so a second Ctrl-C kills a slow cleanup.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// onHangup: SIGHUP's default action would end the program without a word.
func onHangup(ctx context.Context, logger *slog.Logger, why string, reload func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if reload != nil {
					reload()
					continue
				}
				msg := "Received SIGHUP; nothing to reload"
				if why != "" {
					msg += " " + why
				}
				logger.Info(msg)
			}
		}
	}()
}
