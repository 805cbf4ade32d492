// Package sqlitefile opens SQLite files one way: by URI with an explicit
// mode (never creating a missing file), a busy timeout and no other pragma,
// so a database's journal mode stays as its owner left it.
package sqlitefile

import (
	"database/sql"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

const (
	ReadOnly        = "ro"
	ReadWrite       = "rw"
	ReadWriteCreate = "rwc"
)

type Options struct {
	Mode        string // ReadOnly, ReadWrite or ReadWriteCreate
	BusyTimeout time.Duration
	// Immediate takes the write lock at BEGIN: two writers never deadlock.
	Immediate bool
}

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

// Open uses one connection: SQLite serialises writers anyway.
func Open(path string, o Options) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path, o))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
