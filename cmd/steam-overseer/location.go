package main

import (
	"context"
	"errors"

	"github.com/alecthomas/kingpin/v2"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// location is the --steam.home and --state.path every command takes.
type location struct {
	home, statePath string
}

func addLocationFlags(cmd *kingpin.CmdClause, l *location, homeHelp, stateUse string) {
	// Required: without a home, a usage error (exit 2).
	cmd.Flag("steam.home", homeHelp).Envar("STEAM_HOME").Required().StringVar(&l.home)
	cmd.Flag("state.path", "steam-overseer's state database, "+stateUse+
		" (default: <steam.home>/var/master/db/steam-overseer.db).").StringVar(&l.statePath)
}

// resolve defaults the state database to the one beside Steam's.
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

// addProcfsFlag: a host's /proc mounted elsewhere, as in node_exporter.
func addProcfsFlag(cmd *kingpin.CmdClause, root *string) {
	cmd.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(root)
}

// openState adopts home when the database records none yet.
func openState(ctx context.Context, home steam.Home, path string) (*state.DB, error) {
	return ownedBy(ctx, home)(state.Open(ctx, path))
}

func openStateReadOnly(ctx context.Context, home steam.Home, path string) (*state.DB, error) {
	return ownedBy(ctx, home)(state.OpenReadOnly(path))
}

func ownedBy(ctx context.Context, home steam.Home) func(*state.DB, error) (*state.DB, error) {
	return func(st *state.DB, err error) (*state.DB, error) {
		if err != nil {
			return nil, err
		}
		if err := st.BelongsTo(ctx, home.Dir); err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
	}
}

// refuseOtherHomesState leaves a missing or unreadable database to whatever
// reads it later.
func refuseOtherHomesState(ctx context.Context, home steam.Home, path string) error {
	st, err := openStateReadOnly(ctx, home, path)
	if err == nil {
		st.Close()
		return nil
	}
	if mismatch := (*state.HomeMismatchError)(nil); errors.As(err, &mismatch) {
		return err
	}
	return nil
}
