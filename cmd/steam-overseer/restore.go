package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/internal/backup"
	"github.com/steam-overseer/steam-overseer/internal/printable"
)

func init() { register(restoreCommand) }

func restoreCommand(app *kingpin.Application) []subcommand {
	cmd := app.Command("restore", "Restore a backup into an empty or absent folder, checking every file as it is written.")
	file := cmd.Arg("file", "The .tar.gz archive written by steam-overseer backup.").Required().String()
	// No $STEAM_HOME fallback: where a restore writes is always said.
	home := cmd.Flag("steam.home", "The folder to restore into; it must be empty or absent (its parent must exist).").
		Required().String()
	return []subcommand{{clause: cmd, run: func(ctx context.Context, _ *slog.Logger) int {
		return runRestore(ctx, os.Stdout, *file, *home)
	}}}
}

func runRestore(ctx context.Context, stdout io.Writer, file, dir string) int {
	v, err := backup.Restore(ctx, file, dir)
	if err != nil {
		return fail("restoring "+file+" into "+dir, err)
	}
	fmt.Fprintf(stdout, "Restored %d files (%d bytes) of the backup of %s taken %s into %s; every sha256 matched and the databases are intact.\n",
		v.Files, v.Bytes, printable.Quote(v.Manifest.SteamHome), v.Manifest.Created.Format("2006-01-02 15:04:05 MST"), dir)
	fmt.Fprintln(stdout, "The backup holds Steam's databases and models, not Steam itself: unpack Steam's release into the same folder before starting it.")
	// Files belong to whoever restores them; Steam must write its database.
	if os.Geteuid() == 0 {
		fmt.Fprintf(stdout, "The files belong to root: give them to Steam's user (chown -R steam: %s) before starting Steam.\n", dir)
	}
	return 0
}
