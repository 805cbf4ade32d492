package main

import (
	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// location is where a command finds its Steam home and steam-overseer's
// state database: the --steam.home and --state.path every command takes.
type location struct {
	home, statePath string
}

// addLocationFlags adds --steam.home and --state.path to cmd. homeHelp says
// what the command does with the home, stateUse what with the state
// database.
func addLocationFlags(cmd *kingpin.CmdClause, l *location, homeHelp, stateUse string) {
	// Required: without a home nothing can run, a usage error (exit 2).
	cmd.Flag("steam.home", homeHelp).Envar("STEAM_HOME").Required().StringVar(&l.home)
	cmd.Flag("state.path", "steam-overseer's state database, "+stateUse+
		" (default: <steam.home>/var/master/db/steam-overseer.db).").StringVar(&l.statePath)
}

// resolve returns the Steam home, which must exist, and the state
// database's path, defaulting to the one beside Steam's database.
func (l location) resolve() (steam.Home, string, error) {
	home, err := steam.NewHome(l.home)
	if err != nil {
		return steam.Home{}, "", err
	}
	if l.statePath == "" {
		return home, home.StatePath(), nil
	}
	return home, l.statePath, nil
}

// addProcfsFlag adds --path.procfs, where every command that reads processes
// finds procfs (a host's /proc mounted elsewhere, as in node_exporter).
func addProcfsFlag(cmd *kingpin.CmdClause, root *string) {
	cmd.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(root)
}
