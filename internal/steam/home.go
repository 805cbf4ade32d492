// Package steam reads and carefully writes H2O Steam's registry: the SQLite
// database under a Steam home that records every deployment, its port and the
// PID of its java process, and the folders its wars and logs live in.
//
// Steam owns that database. This package opens it read-only to list
// deployments, and writes only one thing: a deployment's process_id, by
// compare-and-set, in a single short statement. It never changes the schema,
// the journal mode or any other column.
package steam

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Home is an unpacked Steam release, e.g. /home/steam/steam-1.1.6-linux-amd64.
type Home struct {
	// Dir is the absolute, cleaned path of the home.
	Dir string
}

// NewHome returns the Steam home at dir. An empty dir falls back to the
// STEAM_HOME environment variable. The folder must exist.
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

// StatePath is the default path of steam-overseer's own state database. It
// sits beside Steam's so that backing up the db folder keeps both.
func (h Home) StatePath() string { return filepath.Join(h.MasterDir(), "db", "steam-overseer.db") }

// JettyRunner is the servlet runner every deployment is started with.
func (h Home) JettyRunner() string {
	return filepath.Join(h.MasterDir(), "assets", "jetty-runner.jar")
}

// ModelDir holds the compiled scoring services (wars) of one model.
func (h Home) ModelDir(modelID int64) string {
	return filepath.Join(h.MasterDir(), "model", strconv.FormatInt(modelID, 10))
}

// LogDir is Steam's log folder; deployment logs written by the remediator go
// there too, where operators already look.
func (h Home) LogDir() string { return filepath.Join(h.MasterDir(), "log") }
