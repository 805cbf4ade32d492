// Package sqlitefile opens the SQLite files this project touches (Steam's
// database, its own state database, backup snapshots) all one way: by URI
// with an explicit open mode, so that a read-only or read-write open never
// creates a missing file; with a busy timeout; and with no other pragma, so
// that a database's journal mode and settings stay as its owner left them.
package sqlitefile

import (
	"database/sql"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Modes of opening a file.
const (
	ReadOnly        = "ro"
	ReadWrite       = "rw"
	ReadWriteCreate = "rwc"
)

// Options say how a file is opened.
type Options struct {
	Mode string // ReadOnly, ReadWrite or ReadWriteCreate
	// BusyTimeout is how long a statement waits for another connection's
	// lock; 0 means not at all.
	BusyTimeout time.Duration
	// Immediate makes every transaction take the write lock when it
	// begins, so that two writers never deadlock upgrading read locks.
	Immediate bool
}

// DSN is the modernc.org/sqlite data source name of the file at path.
func DSN(path string, o Options) string {
	q := url.Values{}
	q.Set("mode", o.Mode)
	if o.BusyTimeout > 0 {
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	}
	if o.Immediate {
		q.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open returns a handle on the file at path with a single connection:
// SQLite serialises writers anyway, and one connection never waits on
// itself. Like sql.Open, it does not touch the file until first used.
func Open(path string, o Options) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path, o))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
