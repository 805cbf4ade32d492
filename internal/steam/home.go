// Package steam reads H2O Steam's registry (the SQLite database of a Steam
// home) and its layout. The only write is a deployment's process_id, by
// compare-and-set in one short statement; schema and journal mode stay Steam's.
package steam

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Home is an unpacked Steam release, e.g. /home/steam/steam-1.1.6-linux-amd64.
type Home struct {
	Dir string
}

// NewHome returns the existing Steam home at dir, or else at $STEAM_HOME.
func NewHome(dir string) (Home, error) {
	if dir == "" {
		dir = os.Getenv("STEAM_HOME")
	}
	if dir == "" {
		return Home{}, fmt.Errorf("no Steam home: set --steam.home or STEAM_HOME")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Home{}, fmt.Errorf("resolving Steam home %q: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Home{}, fmt.Errorf("opening Steam home: %w", err)
	}
	if !fi.IsDir() {
		return Home{}, fmt.Errorf("steam home %s is not a directory", abs)
	}
	return Home{Dir: abs}, nil
}

// MasterDir is the Steam master's working directory.
func (h Home) MasterDir() string { return filepath.Join(h.Dir, "var", "master") }

// DBPath is Steam's own SQLite database.
func (h Home) DBPath() string { return filepath.Join(h.MasterDir(), "db", "steam.db") }

// StatePath is steam-overseer's default state database, backed up with Steam's.
func (h Home) StatePath() string { return filepath.Join(h.MasterDir(), "db", "steam-overseer.db") }

// JettyRunner is the servlet runner every deployment is started with.
func (h Home) JettyRunner() string {
	return filepath.Join(h.MasterDir(), "assets", "jetty-runner.jar")
}

// ModelDir holds the compiled scoring services (wars) of one model.
func (h Home) ModelDir(modelID int64) string {
	return filepath.Join(h.MasterDir(), "model", strconv.FormatInt(modelID, 10))
}

// LogDir is Steam's log folder, where the remediator's deployment logs go too.
func (h Home) LogDir() string { return filepath.Join(h.MasterDir(), "log") }
