package remediate

import (
	"context"
	"time"
)

// Down reports whether the deployment is (or, from a plan, would stay) down
// after this outcome: the remediation failed or was held back, or a dry run
// found something to do. A deployment Steam no longer wants running is not
// down.
func (o Outcome) Down() bool {
	return o.Result == ResultFailure || o.Result == ResultPlanned
}

// Reconcile sweeps every deployment at once and then every interval until
// ctx ends: the safety net that heals deployments when Alertmanager cannot
// reach the remediator, and the old cron job done right. Each sweep's
// outcomes are journaled and logged by the sweep itself.
func (e *Engine) Reconcile(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := e.Sweep(ctx, false); err != nil && ctx.Err() == nil {
			e.logger.Warn("Reconcile sweep could not list deployments", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
