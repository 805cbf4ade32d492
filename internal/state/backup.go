package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// backupSchema is created by the first RecordBackup, not Open: only the
// backup command writes it.
const backupSchema = `
CREATE TABLE IF NOT EXISTS backups (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    time             TEXT    NOT NULL, -- RFC 3339, UTC, when the backup finished
    unix_seconds     REAL    NOT NULL, -- the same instant, for ordering and metrics
    result           TEXT    NOT NULL, -- success or failure
    path             TEXT    NOT NULL DEFAULT '',
    bytes            INTEGER NOT NULL DEFAULT 0,
    files            INTEGER NOT NULL DEFAULT 0,
    duration_seconds REAL    NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS backups_by_result ON backups (result, unix_seconds);
`

// BackupRecord is the outcome of one backup run.
type BackupRecord struct {
	ID       int64
	Time     time.Time
	Result   string
	Path     string
	Bytes    int64
	Files    int
	Duration time.Duration
	Error    string
}

// RecordBackup appends r, creating the backups table if needed.
func (s *DB) RecordBackup(ctx context.Context, r BackupRecord) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if r.Result != ResultSuccess && r.Result != ResultFailure {
		return fmt.Errorf("recording backup: result %q is neither %q nor %q", r.Result, ResultSuccess, ResultFailure)
	}
	if _, err := s.db.ExecContext(ctx, backupSchema); err != nil {
		return fmt.Errorf("creating backups table: %w", err)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO backups
		(time, unix_seconds, result, path, bytes, files, duration_seconds, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Time.UTC().Format(time.RFC3339Nano), float64(r.Time.UnixNano())/1e9, r.Result, r.Path,
		r.Bytes, r.Files, r.Duration.Seconds(), r.Error)
	if err != nil {
		return fmt.Errorf("recording backup of %s: %w", r.Path, err)
	}
	return nil
}

// LastBackupSuccess returns when the newest successful backup finished; ok
// is false when there was none.
func (s *DB) LastBackupSuccess(ctx context.Context) (t time.Time, ok bool, err error) {
	exists, err := s.hasTable(ctx, "backups")
	if err != nil || !exists {
		return time.Time{}, false, err
	}
	var ts string
	err = s.db.QueryRowContext(ctx, `SELECT time FROM backups
		WHERE result = ? ORDER BY unix_seconds DESC LIMIT 1`, ResultSuccess).Scan(&ts)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading last backup: %w", err)
	}
	t, err = time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading last backup: %w", err)
	}
	return t, true, nil
}

// Backups returns at most limit backup records, newest first.
func (s *DB) Backups(ctx context.Context, limit int) ([]BackupRecord, error) {
	exists, err := s.hasTable(ctx, "backups")
	if err != nil || !exists {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, time, result, path, bytes, files,
		duration_seconds, error FROM backups ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading backups: %w", err)
	}
	defer rows.Close()
	var rs []BackupRecord
	for rows.Next() {
		var r BackupRecord
		var ts string
		var secs float64
		if err := rows.Scan(&r.ID, &ts, &r.Result, &r.Path, &r.Bytes, &r.Files, &secs, &r.Error); err != nil {
			return nil, fmt.Errorf("reading backups: %w", err)
		}
		r.Time, _ = time.Parse(time.RFC3339Nano, ts)
		r.Duration = time.Duration(secs * float64(time.Second))
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading backups: %w", err)
	}
	return rs, nil
}
