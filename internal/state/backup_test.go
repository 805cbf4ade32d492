package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

func TestBackupRecords(t *testing.T) {
	ctx := context.Background()
	// A state database the remediator wrote has no backups table: readers,
	// including read-only ones, see "never".
	st, ro := openBoth(t)
	for name, db := range map[string]*state.DB{"read-write": st, "read-only": ro} {
		if _, ok, err := db.LastBackupSuccess(ctx); ok || err != nil {
			t.Errorf("%s, no backups table: ok=%v err=%v, want no success and no error", name, ok, err)
		}
	}

	base := time.Date(2025, 3, 1, 2, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name     string
		record   state.BackupRecord
		wantLast time.Time // zero: no success yet
		wantErr  bool
	}{
		{name: "first failure", record: state.BackupRecord{Time: base, Result: state.ResultFailure, Error: "disk full"}},
		{name: "success", record: state.BackupRecord{Time: base.Add(time.Hour), Result: state.ResultSuccess,
			Path: "/backups/a.tar.gz", Bytes: 4096, Files: 5, Duration: 1500 * time.Millisecond},
			wantLast: base.Add(time.Hour)},
		{name: "later failure keeps the success", record: state.BackupRecord{Time: base.Add(2 * time.Hour),
			Result: state.ResultFailure}, wantLast: base.Add(time.Hour)},
		{name: "newer success", record: state.BackupRecord{Time: base.Add(3 * time.Hour), Result: state.ResultSuccess},
			wantLast: base.Add(3 * time.Hour)},
		// Recorded later but for an earlier time (a clock step back): the
		// newest success by time still wins.
		{name: "older success recorded late", record: state.BackupRecord{Time: base.Add(90 * time.Minute),
			Result: state.ResultSuccess}, wantLast: base.Add(3 * time.Hour)},
		{name: "invalid result", record: state.BackupRecord{Time: base, Result: "ok"}, wantErr: true,
			wantLast: base.Add(3 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := st.RecordBackup(ctx, tc.record)
			if (err != nil) != tc.wantErr {
				t.Fatalf("RecordBackup: %v, want error: %v", err, tc.wantErr)
			}
			for name, db := range map[string]*state.DB{"read-write": st, "read-only": ro} {
				last, ok, err := db.LastBackupSuccess(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ok != !tc.wantLast.IsZero() || !last.Equal(tc.wantLast) {
					t.Errorf("%s: last success %v (ok=%v), want %v", name, last, ok, tc.wantLast)
				}
			}
		})
	}

	records, err := st.Backups(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 5 {
		t.Fatalf("got %d records, want 5", len(records))
	}
	if r := records[3]; r.Path != "/backups/a.tar.gz" || r.Bytes != 4096 || r.Files != 5 ||
		r.Duration != 1500*time.Millisecond || !r.Time.Equal(base.Add(time.Hour)) {
		t.Errorf("success record read back as %+v", r)
	}
	if r := records[4]; r.Result != state.ResultFailure || r.Error != "disk full" {
		t.Errorf("failure record read back as %+v", r)
	}
}
