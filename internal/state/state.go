// Package state is steam-overseer's own SQLite database, beside Steam's:
// the remediation journal, restart counts and the restart policy's memory.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
)

// schema is idempotent. The rollback journal is kept: writers are few and
// tiny, and a read-only reader needs no -shm file.
const schema = `
CREATE TABLE IF NOT EXISTS journal (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    time             TEXT    NOT NULL, -- RFC 3339, UTC
    deployment_id    INTEGER NOT NULL,
    deployment       TEXT    NOT NULL,
    action           TEXT    NOT NULL,
    result           TEXT    NOT NULL,
    reason           TEXT    NOT NULL DEFAULT '',
    detail           TEXT    NOT NULL DEFAULT '',
    old_pid          INTEGER NOT NULL DEFAULT 0,
    new_pid          INTEGER NOT NULL DEFAULT 0,
    duration_seconds REAL    NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS journal_by_deployment ON journal (deployment_id, id);

-- Kept apart from the journal so that the count stays monotonic even when
-- an operator prunes old journal rows.
CREATE TABLE IF NOT EXISTS restarts (
    deployment_id INTEGER PRIMARY KEY,
    total         INTEGER NOT NULL
);

-- The Steam home whose state this is (see BelongsTo): one row.
CREATE TABLE IF NOT EXISTS steam_home (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    path TEXT    NOT NULL
);
`

// Actions and results the journal records.
const (
	ActionRestart = "restart"
	ActionAdopt   = "adopt"
	ActionNoop    = "noop"
	ActionSkip    = "skip"
	ActionGiveUp  = "give_up"
	ActionReset   = "reset"

	ResultSuccess = "success"
	ResultFailure = "failure"
)

// Entry is one journal row.
type Entry struct {
	ID           int64
	Time         time.Time
	DeploymentID int64
	Deployment   string
	Action       string
	Result       string
	Reason       string // a short code
	Detail       string // what happened, for people
	OldPID       int64
	NewPID       int64
	Duration     time.Duration
}

// DB is an open state database.
type DB struct {
	db       *sql.DB
	path     string
	readOnly bool
}

const busyTimeout = 5 * time.Second

func open(path, mode string) (*sql.DB, error) {
	db, err := sqlitefile.Open(path, sqlitefile.Options{Mode: mode, BusyTimeout: busyTimeout, Immediate: true})
	if err != nil {
		return nil, fmt.Errorf("opening state database: %w", err)
	}
	return db, nil
}

// Open opens the state database read-write, creating it as needed.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	db, err := open(path, sqlitefile.ReadWriteCreate)
	if err != nil {
		return nil, err
	}
	for _, ddl := range []string{schema, policySchema} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			db.Close()
			return nil, fmt.Errorf("creating state schema in %s: %w", path, err)
		}
	}
	for _, c := range addedColumns {
		if err := addColumn(ctx, db, c[0], c[1], c[2]); err != nil {
			db.Close()
			return nil, fmt.Errorf("upgrading state schema in %s: %w", path, err)
		}
	}
	return &DB{db: db, path: path}, nil
}

// addedColumns are what later versions added to an older remediator's tables.
var addedColumns = [][3]string{
	{"journal", "detail", "TEXT NOT NULL DEFAULT ''"},
	{"restart_policy", "starting_pid", "INTEGER NOT NULL DEFAULT 0"},
}

func addColumn(ctx context.Context, db *sql.DB, table, column, decl string) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`,
		table, column).Scan(&n); err != nil {
		return fmt.Errorf("reading columns of %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN "+column+" "+decl); err != nil {
		return fmt.Errorf("adding %s.%s: %w", table, column, err)
	}
	return nil
}

// OpenMemory is what a dry run reads when no state database exists yet.
func OpenMemory(ctx context.Context) (*DB, error) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		return nil, fmt.Errorf("opening in-memory state database: %w", err)
	}
	// One connection: each new connection to :memory: is another database.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating in-memory state schema: %w", err)
	}
	return &DB{db: db}, nil
}

// ErrNoState: the remediator never ran; readers see an empty journal.
var ErrNoState = errors.New("state database does not exist")

// OpenReadOnly opens an existing state database without ever writing to it.
func OpenReadOnly(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("opening %s: %w", path, ErrNoState)
		}
		return nil, fmt.Errorf("opening state database: %w", err)
	}
	db, err := open(path, sqlitefile.ReadOnly)
	if err != nil {
		return nil, err
	}
	return &DB{db: db, path: path, readOnly: true}, nil
}

// HomeMismatchError: two homes sharing one state would take each other's
// PIDs, restarts and backoff.
type HomeMismatchError struct {
	Path, Recorded, Home string
}

func (e *HomeMismatchError) Error() string {
	return fmt.Sprintf("state database %s belongs to the Steam home %s, not to %s: "+
		"give each Steam home its own --state.path", e.Path, e.Recorded, e.Home)
}

// BelongsTo fails with a *HomeMismatchError for another home's database;
// one that records no home adopts dir, unless read-only.
func (s *DB) BelongsTo(ctx context.Context, dir string) error {
	if s.readOnly {
		if ok, err := s.hasTable(ctx, "steam_home"); err != nil || !ok {
			return err
		}
	} else if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO steam_home (id, path) VALUES (1, ?)`, dir); err != nil {
		return fmt.Errorf("recording the Steam home in %s: %w", s.path, err)
	}
	var recorded string
	err := s.db.QueryRowContext(ctx, `SELECT path FROM steam_home WHERE id = 1`).Scan(&recorded)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("reading the Steam home of %s: %w", s.path, err)
	case sameDir(recorded, dir):
		return nil
	}
	return &HomeMismatchError{Path: s.path, Recorded: recorded, Home: dir}
}

// sameDir also sees through a link or a bind mount.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// hasTable lets readers of tables Open did not always create skip them,
// as a read-only connection cannot create them.
func (s *DB) hasTable(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("reading state schema: %w", err)
	}
	return n > 0, nil
}

// Record appends e; a successful restart increments the restart count in
// the same transaction.
func (s *DB) Record(ctx context.Context, e Entry) (int64, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("journaling %s of deployment %d: %w", e.Action, e.DeploymentID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, `INSERT INTO journal
		(time, deployment_id, deployment, action, result, reason, detail, old_pid, new_pid, duration_seconds)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Time.UTC().Format(time.RFC3339Nano), e.DeploymentID, e.Deployment, e.Action, e.Result,
		e.Reason, e.Detail, e.OldPID, e.NewPID, e.Duration.Seconds())
	if err != nil {
		return 0, fmt.Errorf("journaling %s of deployment %d: %w", e.Action, e.DeploymentID, err)
	}
	id, _ := res.LastInsertId()
	if e.Action == ActionRestart && e.Result == ResultSuccess {
		if _, err := tx.ExecContext(ctx, `INSERT INTO restarts (deployment_id, total) VALUES (?, 1)
			ON CONFLICT (deployment_id) DO UPDATE SET total = total + 1`, e.DeploymentID); err != nil {
			return 0, fmt.Errorf("counting restart of deployment %d: %w", e.DeploymentID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("journaling %s of deployment %d: %w", e.Action, e.DeploymentID, err)
	}
	return id, nil
}

// RestartCounts returns the number of successful restarts per deployment id.
func (s *DB) RestartCounts(ctx context.Context) (map[int64]uint64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT deployment_id, total FROM restarts`)
	if err != nil {
		return nil, fmt.Errorf("reading restart counts: %w", err)
	}
	defer rows.Close()
	counts := map[int64]uint64{}
	for rows.Next() {
		var id int64
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("reading restart counts: %w", err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading restart counts: %w", err)
	}
	return counts, nil
}

// Journal returns the newest entries first; deploymentID 0 means all.
func (s *DB) Journal(ctx context.Context, deploymentID int64, limit int) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, time, deployment_id, deployment, action, result,
		reason, detail, old_pid, new_pid, duration_seconds FROM journal
		WHERE ? = 0 OR deployment_id = ? ORDER BY id DESC LIMIT ?`, deploymentID, deploymentID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	defer rows.Close()
	var es []Entry
	for rows.Next() {
		var e Entry
		var ts string
		var secs float64
		if err := rows.Scan(&e.ID, &ts, &e.DeploymentID, &e.Deployment, &e.Action, &e.Result,
			&e.Reason, &e.Detail, &e.OldPID, &e.NewPID, &secs); err != nil {
			return nil, fmt.Errorf("reading journal: %w", err)
		}
		e.Time, _ = time.Parse(time.RFC3339Nano, ts)
		e.Duration = time.Duration(secs * float64(time.Second))
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	return es, nil
}
