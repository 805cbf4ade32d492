package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"golang.org/x/sys/unix"

	"github.com/steam-overseer/steam-overseer/internal/backup"
	"github.com/steam-overseer/steam-overseer/internal/printable"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

func init() { register(backupCommand) }

func backupCommand(app *kingpin.Application) []subcommand {
	cmd := app.Command("backup", "Back up a Steam home while Steam runs, or verify a backup.")
	createCmd := cmd.Command("create", "Write a consistent snapshot of Steam's database, the state database and the model folder, while Steam runs (the default).").Default()
	var loc location
	addLocationFlags(createCmd, &loc, "The unpacked Steam release to back up.",
		"backed up too and where the outcome is recorded")
	output := createCmd.Flag("output",
		"The .tar.gz archive to write; an existing directory gets a new steam-backup-<UTC time>.tar.gz per run.").
		Required().String()
	var progress progressFlags
	createCmd.Flag("progress", "Print progress on stderr even when it is not a terminal (on a terminal it is printed anyway) for a backup taking longer than two seconds.").
		BoolVar(&progress.always)
	// Lets tests see the progress line of a backup that takes no time.
	createCmd.Flag("progress.delay", "How long a backup runs before progress is printed.").
		Default("2s").Hidden().DurationVar(&progress.delay)

	verifyCmd := cmd.Command("verify", "Check a backup: every file's sha256 against SHA256SUMS and the manifest, and PRAGMA integrity_check of its databases.")
	verifyFile := verifyCmd.Arg("file", "The .tar.gz archive to check.").Required().String()

	return []subcommand{
		{clause: createCmd, run: func(ctx context.Context, logger *slog.Logger) int {
			return runBackup(ctx, logger, os.Stdout, progress.reporter(os.Stderr), loc, *output)
		}},
		{clause: verifyCmd, run: func(ctx context.Context, _ *slog.Logger) int {
			return runBackupVerify(ctx, os.Stdout, *verifyFile)
		}},
	}
}

type progressFlags struct {
	always bool
	delay  time.Duration
}

type progressReporter func(p *backup.Progress) (stop func())

// reporter prints on a terminal, or when --progress asks: a timer's journal
// or a cron mail gets no progress otherwise.
func (f progressFlags) reporter(w *os.File) progressReporter {
	terminal := isTerminal(w)
	if !terminal && !f.always {
		return nil
	}
	interval := time.Second
	if !terminal {
		interval = 10 * time.Second
	}
	return func(p *backup.Progress) func() { return p.Report(w, terminal, f.delay, interval) }
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func runBackupVerify(ctx context.Context, stdout io.Writer, path string) int {
	v, err := backup.Verify(ctx, path)
	if err != nil {
		return fail("verifying "+path, err)
	}
	fmt.Fprintf(stdout, "%s: OK, %d files (%d bytes) match %s, databases intact: %s\n",
		path, v.Files, v.Bytes, v.ListedIn, printable.Quote(strings.Join(v.Databases, ", ")))
	return 0
}

// runBackup records the outcome in the state database, for the exporter's
// steam_backup_last_success_timestamp_seconds.
func runBackup(ctx context.Context, logger *slog.Logger, stdout io.Writer, report progressReporter, loc location, output string) int {
	home, statePath, err := loc.resolve()
	if err != nil {
		return fail("", err)
	}
	// The archive would hold another home's journal and restart policy.
	if err := refuseOtherHomesState(ctx, home, statePath); err != nil {
		return fail("", err)
	}
	start := time.Now()
	opts := backup.Options{Home: home, StatePath: statePath, Output: output}
	stopProgress := func() {}
	if report != nil {
		opts.Progress = &backup.Progress{}
		stopProgress = report(opts.Progress)
	}
	res, err := backup.Create(ctx, logger, opts)
	stopProgress()
	rec := state.BackupRecord{Result: state.ResultSuccess, Path: res.Path, Bytes: res.Bytes,
		Files: len(res.Manifest.Files), Duration: time.Since(start)}
	if err != nil {
		rec.Result, rec.Error = state.ResultFailure, err.Error()
	} else {
		logger.Info("Backup written", "path", res.Path, "bytes", res.Bytes, "files", len(res.Manifest.Files),
			"duration", res.Duration)
	}
	recErr := recordBackup(ctx, home, statePath, rec)
	switch {
	case err != nil && recErr != nil:
		fail("backing up "+home.Dir, err)
		return fail("recording the failure in "+statePath+" failed too", recErr)
	case err != nil:
		return fail("backing up "+home.Dir, err)
	case recErr != nil:
		// Exiting 0 would hide that the exporter still shows the previous backup.
		return fail("the archive "+res.Path+" is complete, but recording it in "+statePath, recErr)
	}
	fmt.Fprintln(stdout, res.Path)
	return 0
}

// recordBackup never creates var/master/db: a home without it is not one
// to leave files in.
func recordBackup(ctx context.Context, home steam.Home, statePath string, rec state.BackupRecord) error {
	if _, err := os.Stat(filepath.Dir(statePath)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state folder %s does not exist", filepath.Dir(statePath))
	}
	// Recorded even after Ctrl-C, so the table says why the last run failed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	st, err := openState(ctx, home, statePath)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.RecordBackup(ctx, rec)
}
