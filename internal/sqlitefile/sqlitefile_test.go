package sqlitefile_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	// A path with URI metacharacters must name the file, not a query.
	path := filepath.Join(dir, "a?b#c%20.db")
	for _, tc := range []struct {
		mode       string
		wantCreate bool
	}{
		{sqlitefile.ReadOnly, false},
		{sqlitefile.ReadWrite, false},
		{sqlitefile.ReadWriteCreate, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			db, err := sqlitefile.Open(path, sqlitefile.Options{Mode: tc.mode, BusyTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Ping()
			_, statErr := os.Stat(path)
			if created := statErr == nil; created != tc.wantCreate {
				t.Fatalf("mode %s: file created %v (ping: %v), want %v", tc.mode, created, err, tc.wantCreate)
			}
			var timeout, mode string
			if tc.wantCreate {
				if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != "1000" {
					t.Errorf("busy_timeout %q (%v), want 1000", timeout, err)
				}
				// No pragma but the busy timeout: SQLite's default stays.
				if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "delete" {
					t.Errorf("journal_mode %q (%v), want delete", mode, err)
				}
			}
		})
	}
}
