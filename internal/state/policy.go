package state

import (
	"context"
	"fmt"
	"time"
)

// Times are Unix milliseconds (0: none), compared in SQL, where RFC 3339
// text with varying fractions sorts wrong.
const policySchema = `
CREATE TABLE IF NOT EXISTS restart_policy (
    deployment_id        INTEGER PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_start_ms        INTEGER NOT NULL DEFAULT 0,
    gave_up_until_ms     INTEGER NOT NULL DEFAULT 0,
    gave_up_reason       TEXT    NOT NULL DEFAULT '',
    probation_pid        INTEGER NOT NULL DEFAULT 0,
    probation_until_ms   INTEGER NOT NULL DEFAULT 0,
    starting_pid         INTEGER NOT NULL DEFAULT 0
);
-- One row per process the remediator started, whatever became of it: the
-- flapping limit counts starts, and a start whose remediator was killed
-- before it could journal the outcome must count all the same.
CREATE TABLE IF NOT EXISTS restart_starts (
    deployment_id INTEGER NOT NULL,
    time_ms       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS restart_starts_by_deployment ON restart_starts (deployment_id, time_ms);
-- Remediations under way, with the alert that asked: a remediator killed
-- mid-way resumes them at its next start.
CREATE TABLE IF NOT EXISTS in_flight (
    deployment_id INTEGER PRIMARY KEY,
    alert         TEXT NOT NULL
);
`

// ActionFailure journals a restart whose process died in its watch window.
const ActionFailure = "failure"

// RestartPolicy is what the remediator remembers of a deployment between
// starts, so that backoff and giving up survive its own restarts.
type RestartPolicy struct {
	DeploymentID        int64
	ConsecutiveFailures int
	NextStart           time.Time
	GaveUpUntil         time.Time
	GaveUpReason        string
	// ProbationPID dying before ProbationUntil makes the last start a failure.
	ProbationPID   int64
	ProbationUntil time.Time
	// StartingPID is a java started and not yet ready: the next remediator
	// resumes it.
	StartingPID int64
}

// GaveUp reports whether the deployment is given up at now.
func (p RestartPolicy) GaveUp(now time.Time) bool {
	return !p.GaveUpUntil.IsZero() && now.Before(p.GaveUpUntil)
}

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// RestartPolicy returns a deployment's record, zero when never started.
func (s *DB) RestartPolicy(ctx context.Context, deploymentID int64) (RestartPolicy, error) {
	p := RestartPolicy{DeploymentID: deploymentID}
	if ok, err := s.hasTable(ctx, "restart_policy"); err != nil || !ok {
		return p, err
	}
	ps, err := s.restartPolicies(ctx, `WHERE deployment_id = ?`, deploymentID)
	if err != nil || len(ps) == 0 {
		return p, err
	}
	return ps[0], nil
}

// RestartPolicies returns every deployment's policy record, ordered by id.
func (s *DB) RestartPolicies(ctx context.Context) ([]RestartPolicy, error) {
	if ok, err := s.hasTable(ctx, "restart_policy"); err != nil || !ok {
		return nil, err
	}
	return s.restartPolicies(ctx, `ORDER BY deployment_id`)
}

func (s *DB) restartPolicies(ctx context.Context, where string, args ...any) ([]RestartPolicy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT deployment_id, consecutive_failures, next_start_ms,
		gave_up_until_ms, gave_up_reason, probation_pid, probation_until_ms, starting_pid FROM restart_policy `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading restart policy: %w", err)
	}
	defer rows.Close()
	var ps []RestartPolicy
	for rows.Next() {
		var p RestartPolicy
		var next, gaveUp, probation int64
		if err := rows.Scan(&p.DeploymentID, &p.ConsecutiveFailures, &next, &gaveUp, &p.GaveUpReason,
			&p.ProbationPID, &probation, &p.StartingPID); err != nil {
			return nil, fmt.Errorf("reading restart policy: %w", err)
		}
		p.NextStart, p.GaveUpUntil, p.ProbationUntil = fromMillis(next), fromMillis(gaveUp), fromMillis(probation)
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading restart policy: %w", err)
	}
	return ps, nil
}

// SaveRestartPolicy stores p, replacing the deployment's previous record.
func (s *DB) SaveRestartPolicy(ctx context.Context, p RestartPolicy) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO restart_policy (deployment_id, consecutive_failures,
		next_start_ms, gave_up_until_ms, gave_up_reason, probation_pid, probation_until_ms, starting_pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (deployment_id) DO UPDATE SET
		consecutive_failures = excluded.consecutive_failures, next_start_ms = excluded.next_start_ms,
		gave_up_until_ms = excluded.gave_up_until_ms, gave_up_reason = excluded.gave_up_reason,
		probation_pid = excluded.probation_pid, probation_until_ms = excluded.probation_until_ms,
		starting_pid = excluded.starting_pid`,
		p.DeploymentID, p.ConsecutiveFailures, toMillis(p.NextStart), toMillis(p.GaveUpUntil), p.GaveUpReason,
		p.ProbationPID, toMillis(p.ProbationUntil), p.StartingPID)
	if err != nil {
		return fmt.Errorf("saving restart policy of deployment %d: %w", p.DeploymentID, err)
	}
	return nil
}

// RecordStart notes a start at t and forgets those before forgetBefore.
func (s *DB) RecordStart(ctx context.Context, deploymentID int64, t, forgetBefore time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording start of deployment %d: %w", deploymentID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `DELETE FROM restart_starts WHERE deployment_id = ? AND time_ms < ?`,
		deploymentID, forgetBefore.UnixMilli()); err != nil {
		return fmt.Errorf("recording start of deployment %d: %w", deploymentID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO restart_starts (deployment_id, time_ms) VALUES (?, ?)`,
		deploymentID, t.UnixMilli()); err != nil {
		return fmt.Errorf("recording start of deployment %d: %w", deploymentID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording start of deployment %d: %w", deploymentID, err)
	}
	return nil
}

// StartsSince counts the deployment's starts at or after since.
func (s *DB) StartsSince(ctx context.Context, deploymentID int64, since time.Time) (int, error) {
	if ok, err := s.hasTable(ctx, "restart_policy"); err != nil || !ok {
		return 0, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM restart_starts WHERE deployment_id = ? AND time_ms >= ?`,
		deploymentID, since.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting starts of deployment %d: %w", deploymentID, err)
	}
	return n, nil
}

// ResetRestartPolicy forgets failures, backoff, giving up and past starts.
func (s *DB) ResetRestartPolicy(ctx context.Context, deploymentID int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("resetting restart policy of deployment %d: %w", deploymentID, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// The row stays, clean, so a given-up deployment is seen as no longer
	// given up rather than vanishing from metrics.
	for _, q := range []string{
		`INSERT OR REPLACE INTO restart_policy (deployment_id) VALUES (?)`,
		`DELETE FROM restart_starts WHERE deployment_id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, deploymentID); err != nil {
			return fmt.Errorf("resetting restart policy of deployment %d: %w", deploymentID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("resetting restart policy of deployment %d: %w", deploymentID, err)
	}
	return nil
}

// SetInFlight notes that the deployment is being remediated for alert.
func (s *DB) SetInFlight(ctx context.Context, deploymentID int64, alert string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO in_flight (deployment_id, alert) VALUES (?, ?)`,
		deploymentID, alert); err != nil {
		return fmt.Errorf("noting remediation of deployment %d: %w", deploymentID, err)
	}
	return nil
}

// ClearInFlight forgets SetInFlight's note once the remediation is done.
func (s *DB) ClearInFlight(ctx context.Context, deploymentID int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM in_flight WHERE deployment_id = ?`, deploymentID); err != nil {
		return fmt.Errorf("clearing remediation of deployment %d: %w", deploymentID, err)
	}
	return nil
}

// InFlight returns the alert of every remediation noted and not cleared.
func (s *DB) InFlight(ctx context.Context) (map[int64]string, error) {
	if ok, err := s.hasTable(ctx, "in_flight"); err != nil || !ok {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT deployment_id, alert FROM in_flight`)
	if err != nil {
		return nil, fmt.Errorf("reading remediations under way: %w", err)
	}
	defer rows.Close()
	m := map[int64]string{}
	for rows.Next() {
		var id int64
		var alert string
		if err := rows.Scan(&id, &alert); err != nil {
			return nil, fmt.Errorf("reading remediations under way: %w", err)
		}
		m[id] = alert
	}
	return m, rows.Err()
}
