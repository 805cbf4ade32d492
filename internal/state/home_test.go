package state_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/internal/state"
)

// TestBelongsTo: the first home to use a state database owns it; another
// is refused with both homes named, read-write or read-only; a database of
// an older version, which records no home, adopts the first one to use it
// read-write.
func TestBelongsTo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	homeA, homeB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{homeA, homeB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	linkA := filepath.Join(dir, "link-to-a")
	if err := os.Symlink(homeA, linkA); err != nil {
		t.Fatal(err)
	}
	legacy := func(t *testing.T, path string) {
		t.Helper()
		db, err := sqlitefile.Open(path, sqlitefile.Options{Mode: sqlitefile.ReadWrite})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`DROP TABLE steam_home`); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		legacy   bool   // the database predates the record
		readOnly string // a home checked read-only before any read-write use
		first    string // the home that uses it read-write first
		then     string
		wantErr  bool
	}{
		{name: "same home", first: homeA, then: homeA},
		{name: "same home through a link", first: homeA, then: linkA},
		{name: "another home", first: homeA, then: homeB, wantErr: true},
		{name: "older database adopts", legacy: true, first: homeA, then: homeA},
		{name: "older database, then another home", legacy: true, first: homeA, then: homeB, wantErr: true},
		{name: "read-only use adopts nothing", readOnly: homeB, first: homeA, then: homeA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			st, err := state.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if tc.legacy {
				legacy(t, path)
			}
			if tc.readOnly != "" {
				ro, err := state.OpenReadOnly(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := ro.BelongsTo(ctx, tc.readOnly); err != nil {
					t.Errorf("read-only BelongsTo(%s) of a database that records no home: %v", tc.readOnly, err)
				}
				ro.Close()
			}
			check := func(home string, readOnly bool) error {
				t.Helper()
				var st *state.DB
				var err error
				if readOnly {
					st, err = state.OpenReadOnly(path)
				} else {
					st, err = state.Open(ctx, path)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				return st.BelongsTo(ctx, home)
			}
			if err := check(tc.first, false); err != nil {
				t.Fatalf("first use by %s: %v", tc.first, err)
			}
			for _, readOnly := range []bool{false, true} {
				err := check(tc.then, readOnly)
				var mismatch *state.HomeMismatchError
				switch {
				case !tc.wantErr && err != nil:
					t.Errorf("use by %s (read-only %v): %v", tc.then, readOnly, err)
				case tc.wantErr && !errors.As(err, &mismatch):
					t.Errorf("use by %s (read-only %v): %v, want a HomeMismatchError", tc.then, readOnly, err)
				case tc.wantErr && (!strings.Contains(err.Error(), tc.first) || !strings.Contains(err.Error(), tc.then)):
					t.Errorf("error does not name both homes: %v", err)
				}
			}
		})
	}
}
