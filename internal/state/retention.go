package state

import (
	"context"
	"fmt"
	"time"
)

// pruneBatch bounds the rows one pruning transaction deletes, so that the
// remediator's own journal writes wait at most for one short transaction
// even when months of rows go at once.
const pruneBatch = 1000

// PruneJournal deletes the journal rows recorded before cutoff and returns
// how many went. Restart counts live in their own table and are untouched,
// so steam_deployment_restarts_total stays monotonic; the restart policy's
// memory is in its own tables too.
func (s *DB) PruneJournal(ctx context.Context, cutoff time.Time) (int64, error) {
	// Times are compared as instants, not as text: RFC 3339 with trimmed
	// fractions does not sort as text ("…:00Z" after "…:00.5Z").
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
