package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

func TestBackupCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare returns the --steam.home and --output flags.
		prepare     func(t *testing.T, h *steamtest.Home) (home, output string)
		wantCode    int
		wantRecord  string // the backups table's newest result, "" for none
		wantArchive bool
	}{
		{
			name: "success",
			prepare: func(t *testing.T, h *steamtest.Home) (string, string) {
				return h.Home.Dir, filepath.Join(t.TempDir(), "steam.tar.gz")
			},
			wantRecord:  state.ResultSuccess,
			wantArchive: true,
		},
		{
			name: "steam home missing",
			prepare: func(t *testing.T, h *steamtest.Home) (string, string) {
				return filepath.Join(t.TempDir(), "nonexistent"), filepath.Join(t.TempDir(), "steam.tar.gz")
			},
			wantCode: 1,
		},
		{
			name: "steam.db missing",
			prepare: func(t *testing.T, h *steamtest.Home) (string, string) {
				if err := os.Remove(h.Home.DBPath()); err != nil {
					t.Fatal(err)
				}
				return h.Home.Dir, filepath.Join(t.TempDir(), "steam.tar.gz")
			},
			wantCode:   1,
			wantRecord: state.ResultFailure,
		},
		{
			name: "output folder missing",
			prepare: func(t *testing.T, h *steamtest.Home) (string, string) {
				return h.Home.Dir, filepath.Join(t.TempDir(), "nonexistent", "steam.tar.gz")
			},
			wantCode:   1,
			wantRecord: state.ResultFailure,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := steamtest.NewHome(t)
			h.Add(steamfixture.Spec{Name: "churn", LogicalName: "churn"})
			home, output := tc.prepare(t, h)
			var stdout bytes.Buffer
			before := time.Now()
			code := runBackup(context.Background(), promslog.NewNopLogger(), &stdout, location{home: home}, output)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d", code, tc.wantCode)
			}
			_, err := os.Stat(output)
			if tc.wantArchive != (err == nil) {
				t.Errorf("archive %s: %v, want it to exist: %v", output, err, tc.wantArchive)
			}
			if tc.wantArchive && strings.TrimSpace(stdout.String()) != output {
				t.Errorf("printed %q, want the archive's path %s", stdout.String(), output)
			}

			st, err := state.OpenReadOnly(h.Home.StatePath())
			if tc.wantRecord == "" {
				if err == nil {
					st.Close()
					t.Error("a state database was created for a failed run")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			records, err := st.Backups(context.Background(), 1)
			if err != nil || len(records) != 1 || records[0].Result != tc.wantRecord {
				t.Fatalf("backup records %+v (%v), want one %s", records, err, tc.wantRecord)
			}
			last, ok, err := st.LastBackupSuccess(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if wantOK := tc.wantRecord == state.ResultSuccess; ok != wantOK || (ok && last.Before(before)) {
				t.Errorf("last success %v, %v; want one after %v: %v", last, ok, before, wantOK)
			}
		})
	}
}

func TestBackupCommandFlags(t *testing.T) {
	if code := run([]string{"steam-overseer", "backup", "--steam.home", t.TempDir()}); code != 2 {
		t.Errorf("backup without --output exits %d, want 2", code)
	}
}
