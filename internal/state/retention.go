package state

import (
	"context"
	"fmt"
	"time"
)

// pruneBatch keeps each pruning transaction short for the journal's writers.
const pruneBatch = 1000

// PruneJournal deletes journal rows recorded before cutoff. Restart counts
// and policies live in their own tables, untouched.
func (s *DB) PruneJournal(ctx context.Context, cutoff time.Time) (int64, error) {
	// Compared as instants: RFC 3339 with trimmed fractions does not sort as text.
	cut := cutoff.UTC().Format(time.RFC3339Nano)
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, `DELETE FROM journal WHERE id IN (
			SELECT id FROM journal WHERE julianday(time) < julianday(?) LIMIT ?)`, cut, pruneBatch)
		if err != nil {
			return total, fmt.Errorf("pruning journal rows before %s: %w", cut, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("pruning journal rows before %s: %w", cut, err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
