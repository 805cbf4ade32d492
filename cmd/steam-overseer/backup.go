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
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/internal/backup"
	"github.com/steam-overseer/steam-overseer/internal/state"
)

func init() { register(backupCommand) }

func backupCommand(app *kingpin.Application) []subcommand {
	cmd := app.Command("backup", "Write a consistent snapshot of Steam's database, the state database and the model folder, while Steam runs.")
	var loc location
	addLocationFlags(cmd, &loc, "The unpacked Steam release to back up.",
		"backed up too and where the outcome is recorded")
	output := cmd.Flag("output",
		"The .tar.gz archive to write; an existing directory gets a new steam-backup-<UTC time>.tar.gz per run.").
		Required().String()
	return []subcommand{{clause: cmd, run: func(ctx context.Context, logger *slog.Logger) int {
		return runBackup(ctx, logger, os.Stdout, loc, *output)
	}}}
}

// runBackup prints the archive's path on success, exits non-zero on any
// failure, and records the outcome in the state database for the exporter's
// steam_backup_last_success_timestamp_seconds.
func runBackup(ctx context.Context, logger *slog.Logger, stdout io.Writer, loc location, output string) int {
	home, statePath, err := loc.resolve()
	if err != nil {
		return fail("", err)
	}
	start := time.Now()
	res, err := backup.Create(ctx, logger, backup.Options{Home: home, StatePath: statePath, Output: output})
	rec := state.BackupRecord{Result: state.ResultSuccess, Path: res.Path, Bytes: res.Bytes,
		Files: len(res.Manifest.Files), Duration: time.Since(start)}
	if err != nil {
		rec.Result, rec.Error = state.ResultFailure, err.Error()
	} else {
		logger.Info("Backup written", "path", res.Path, "bytes", res.Bytes, "files", len(res.Manifest.Files),
			"duration", res.Duration)
	}
	recErr := recordBackup(ctx, statePath, rec)
	switch {
	case err != nil && recErr != nil:
		fail("backing up "+home.Dir, err)
		return fail("recording the failure in "+statePath+" failed too", recErr)
	case err != nil:
		return fail("backing up "+home.Dir, err)
	case recErr != nil:
		// Exiting 0 would hide that the exporter goes on showing the
		// previous backup as the last good one, until SteamBackupTooOld.
		return fail("the archive "+res.Path+" is complete, but recording it in "+statePath, recErr)
	}
	fmt.Fprintln(stdout, res.Path)
	return 0
}

// recordBackup appends the outcome to the state database. It creates the
// database if needed, but never the folder it belongs in: a home without
// var/master/db is not one to leave files in.
func recordBackup(ctx context.Context, statePath string, rec state.BackupRecord) error {
	if _, err := os.Stat(filepath.Dir(statePath)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state folder %s does not exist", filepath.Dir(statePath))
	}
	// The outcome is recorded even when ctx ended (Ctrl-C), so that the
	// backups table says why the last run failed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	st, err := state.Open(ctx, statePath)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.RecordBackup(ctx, rec)
}
