package steam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
)

// ErrNotFound means the deployment has no row in Steam's service table: Steam
// stopped or deleted it.
var ErrNotFound = errors.New("deployment not found")

// ErrPIDChanged means a compare-and-set of process_id found another value
// than the one expected: somebody (Steam, an operator, another remediator)
// changed the row first.
var ErrPIDChanged = errors.New("process_id changed concurrently")

// ErrNotStarted means a compare-and-set found the row no longer started:
// Steam stopped the deployment meanwhile.
var ErrNotStarted = errors.New("deployment no longer started")

// DefaultBusyTimeout is how long a statement waits for Steam's own write lock
// before it gives up. Steam's transactions are short; five seconds outlasts
// them without letting a scrape hang.
const DefaultBusyTimeout = 5 * time.Second

// Registry lists Steam's deployments. Every call opens the database afresh,
// read-only, and closes it again: a missing or replaced file (a restore from
// backup, a Steam reinstall) is seen at the next call, and no connection
// lingers holding a lock or an old inode.
type Registry struct {
	Home        Home
	BusyTimeout time.Duration
}

// NewRegistry returns the registry of the Steam home.
func NewRegistry(home Home) *Registry {
	return &Registry{Home: home, BusyTimeout: DefaultBusyTimeout}
}

func (r *Registry) open(mode string) (*sql.DB, error) {
	// sql.Open does not touch the file; a stat first turns "no such file"
	// into an error that says so rather than SQLite's "unable to open".
	if _, err := os.Stat(r.Home.DBPath()); err != nil {
		return nil, fmt.Errorf("opening Steam database: %w", err)
	}
	// Read-only or read-write, never creating: Steam's journal mode and
	// foreign-key setting stay as Steam left them.
	db, err := sqlitefile.Open(r.Home.DBPath(), sqlitefile.Options{Mode: mode, BusyTimeout: r.BusyTimeout})
	if err != nil {
		return nil, fmt.Errorf("opening Steam database: %w", err)
	}
	return db, nil
}

// The casts keep odd rows readable: SQLite stores whatever it is given, and a
// text port or a NULL process_id must become a reported problem, not a scan
// error that hides every other deployment.
const selectDeployments = `
SELECT s.id,
       COALESCE(CAST(s.name AS TEXT), ''),
       COALESCE(CAST(s.project_id AS INTEGER), 0),
       COALESCE(CAST(p.name AS TEXT), ''),
       COALESCE(CAST(s.model_id AS INTEGER), 0),
       m.id IS NOT NULL,
       COALESCE(CAST(m.name AS TEXT), ''),
       COALESCE(CAST(m.logical_name AS TEXT), ''),
       COALESCE(CAST(s.address AS TEXT), ''),
       COALESCE(CAST(s.port AS INTEGER), 0),
       COALESCE(CAST(s.process_id AS INTEGER), 0),
       COALESCE(CAST(s.state AS TEXT), ''),
       COALESCE(CAST(s.created AS TEXT), '')
FROM service s
LEFT JOIN model m ON m.id = s.model_id
LEFT JOIN project p ON p.id = s.project_id`

// Deployments lists every row of Steam's service table, ordered by id, with
// its model and project names and its war resolved (see Deployment.Problem).
func (r *Registry) Deployments(ctx context.Context) ([]Deployment, error) {
	db, err := r.open(sqlitefile.ReadOnly)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, selectDeployments+" ORDER BY s.id")
	if err != nil {
		return nil, fmt.Errorf("reading service rows: %w", err)
	}
	defer rows.Close()
	var ds []Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading service rows: %w", err)
	}
	r.resolve(ds)
	return ds, nil
}

// Deployment re-reads one deployment. It returns ErrNotFound when the row is
// gone.
func (r *Registry) Deployment(ctx context.Context, id int64) (Deployment, error) {
	db, err := r.open(sqlitefile.ReadOnly)
	if err != nil {
		return Deployment{}, err
	}
	defer db.Close()
	row := db.QueryRowContext(ctx, selectDeployments+" WHERE s.id = ?", id)
	d, err := scanDeployment(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Deployment{}, fmt.Errorf("reading service %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Deployment{}, err
	}
	ds := []Deployment{d}
	r.resolve(ds)
	return ds[0], nil
}

type scanner interface{ Scan(dest ...any) error }

func scanDeployment(s scanner) (Deployment, error) {
	var d Deployment
	err := s.Scan(&d.ID, &d.Name, &d.ProjectID, &d.ProjectName, &d.ModelID, &d.modelExists,
		&d.ModelName, &d.LogicalName, &d.Address, &d.Port, &d.PID, &d.State, &d.Created)
	if err != nil {
		return Deployment{}, fmt.Errorf("reading service row: %w", err)
	}
	return d, nil
}

// SetPID records newPID as the deployment's process_id, but only if the row
// still holds oldPID and is still started: a single UPDATE, its own short
// transaction, that changes nothing else. It returns ErrNotFound when the row
// is gone, ErrNotStarted when Steam stopped it, and ErrPIDChanged when it
// holds another PID. While Steam holds the write lock the statement
// waits for BusyTimeout, and SetPID retries until ctx ends, so a PID of a
// process that is already serving is not lost to a passing lock.
func (r *Registry) SetPID(ctx context.Context, id, oldPID, newPID int64) error {
	db, err := r.open(sqlitefile.ReadWrite)
	if err != nil {
		return err
	}
	defer db.Close()
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err = setPID(ctx, db, id, oldPID, newPID)
		if err == nil || !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recording PID %d for service %d: %w (last error: %v)", newPID, id, ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
}

func setPID(ctx context.Context, db *sql.DB, id, oldPID, newPID int64) error {
	res, err := db.ExecContext(ctx,
		`UPDATE service SET process_id = ? WHERE id = ? AND COALESCE(CAST(process_id AS INTEGER), 0) = ? AND state = ?`,
		newPID, id, oldPID, StateStarted)
	if err != nil {
		return fmt.Errorf("recording PID %d for service %d: %w", newPID, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("recording PID %d for service %d: %w", newPID, id, err)
	}
	if n == 1 {
		return nil
	}
	var current sql.NullInt64
	var state sql.NullString
	err = db.QueryRowContext(ctx, `SELECT process_id, state FROM service WHERE id = ?`, id).Scan(&current, &state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("recording PID %d for service %d: %w", newPID, id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("recording PID %d for service %d: %w", newPID, id, err)
	case state.String != StateStarted:
		return fmt.Errorf("recording PID %d for service %d: state is %q: %w", newPID, id, state.String, ErrNotStarted)
	}
	return fmt.Errorf("recording PID %d for service %d: row holds %d, expected %d: %w",
		newPID, id, current.Int64, oldPID, ErrPIDChanged)
}

// isBusy tells whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED, the
// errors a retry can outlast.
func isBusy(err error) bool {
	var coder interface{ Code() int }
	if errors.As(err, &coder) {
		switch coder.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}
