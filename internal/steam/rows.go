package steam

import (
	"context"
	"fmt"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
)

// ServiceRow is a watcher's per-second read: no join, no war lookup.
type ServiceRow struct {
	ID    int64
	PID   int64 // 0 when NULL
	State string
}

// Rows returns every service row's id, process_id and state.
func (r *Registry) Rows(ctx context.Context) ([]ServiceRow, error) {
	db, err := r.open(sqlitefile.ReadOnly)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, COALESCE(CAST(process_id AS INTEGER), 0),
		COALESCE(CAST(state AS TEXT), '') FROM service`)
	if err != nil {
		return nil, fmt.Errorf("reading service rows: %w", err)
	}
	defer rows.Close()
	var out []ServiceRow
	for rows.Next() {
		var s ServiceRow
		if err := rows.Scan(&s.ID, &s.PID, &s.State); err != nil {
			return nil, fmt.Errorf("reading service rows: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading service rows: %w", err)
	}
	return out, nil
}
