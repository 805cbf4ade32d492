package steam

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
)

// ErrNotFound means Steam's service table has no such row.
var ErrNotFound = errors.New("deployment not found")

// ErrPIDChanged means a compare-and-set of process_id found another value.
var ErrPIDChanged = errors.New("process_id changed concurrently")

// ErrNotStarted means a compare-and-set found the row no longer started.
var ErrNotStarted = errors.New("deployment no longer started")

// DefaultBusyTimeout outlasts Steam's transactions, short of hanging a scrape.
const DefaultBusyTimeout = 5 * time.Second

// Registry opens the database at every call, so a replaced file is seen.
type Registry struct {
	Home        Home
	BusyTimeout time.Duration
}

// NewRegistry returns the registry of the Steam home.
func NewRegistry(home Home) *Registry {
	return &Registry{Home: home, BusyTimeout: DefaultBusyTimeout}
}

func (r *Registry) open(mode string) (*sql.DB, error) {
	if _, err := os.Stat(r.Home.DBPath()); err != nil {
		return nil, fmt.Errorf("opening Steam database: %w", err)
	}
	db, err := sqlitefile.Open(r.Home.DBPath(), sqlitefile.Options{Mode: mode, BusyTimeout: r.BusyTimeout})
	if err != nil {
		return nil, fmt.Errorf("opening Steam database: %w", err)
	}
	return db, nil
}

// The casts report odd rows (a NULL process_id) instead of failing every
// scan; the port is read as stored (see portOf).
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
       s.port,
       COALESCE(CAST(s.process_id AS INTEGER), 0),
       COALESCE(CAST(s.state AS TEXT), ''),
       COALESCE(CAST(s.created AS TEXT), '')
FROM service s
LEFT JOIN model m ON m.id = s.model_id
LEFT JOIN project p ON p.id = s.project_id`

// Deployments lists Steam's service rows by id, with their wars resolved.
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

// IDs lists the ids without resolving any war.
func (r *Registry) IDs(ctx context.Context) (map[int64]bool, error) {
	db, err := r.open(sqlitefile.ReadOnly)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id FROM service`)
	if err != nil {
		return nil, fmt.Errorf("reading service ids: %w", err)
	}
	defer rows.Close()
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("reading service ids: %w", err)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading service ids: %w", err)
	}
	return ids, nil
}

// Deployment re-reads one deployment, or returns ErrNotFound.
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
	var port any
	err := s.Scan(&d.ID, &d.Name, &d.ProjectID, &d.ProjectName, &d.ModelID, &d.modelExists,
		&d.ModelName, &d.LogicalName, &d.Address, &port, &d.PID, &d.State, &d.Created)
	if err != nil {
		return Deployment{}, fmt.Errorf("reading service row: %w", err)
	}
	d.Port = portOf(port)
	return d, nil
}

// portOf accepts only a plain integer or decimal text: CAST would make
// '80a' port 80.
func portOf(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		if v == math.Trunc(v) && v >= 0 && v <= math.MaxInt32 {
			return int64(v)
		}
	case string:
		if v != "" && strings.Trim(v, "0123456789") == "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return 0
}

// SetPID compare-and-sets process_id in one short UPDATE, retrying while
// the database is locked.
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
