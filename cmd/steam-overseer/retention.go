package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/steam-overseer/steam-overseer/internal/state"
)

// journalPruneInterval: rows age by the hour, and a day's worth is tiny.
const journalPruneInterval = time.Hour

// addJournalRetentionFlag uses Prometheus's duration syntax (90d).
func addJournalRetentionFlag(cmd *kingpin.CmdClause, retention *model.Duration) {
	cmd.Flag("journal.retention", "How long journal rows are kept; older ones are pruned at start and hourly (0 keeps every row). Restart counts are kept apart and never pruned.").
		Default("90d").SetValue(retention)
}

// startJournalPruning prunes now and every interval until stop, which waits
// for a pruning in progress; a failure is logged and tried again.
func startJournalPruning(ctx context.Context, logger *slog.Logger, st *state.DB, retention, interval time.Duration) (stop func()) {
	if retention <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			cutoff := time.Now().Add(-retention)
			switch n, err := st.PruneJournal(ctx, cutoff); {
			case err != nil && ctx.Err() == nil:
				logger.Warn("Pruning the journal failed", "cutoff", cutoff, "err", err)
			case n > 0:
				logger.Info("Pruned the journal", "rows", n, "cutoff", cutoff)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
