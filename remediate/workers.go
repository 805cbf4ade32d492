package remediate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// job is a deployment queued or being remediated.
type job struct {
	queued  time.Time // when the notification that queued it came
	alert   string    // what it was for; AlertUnresponsive wins over others
	running bool
	// again: notified while remediated, so checked once more after (never started twice).
	again       bool
	againQueued time.Time
	againAlert  string
}

// strongest keeps the alert that may stop a live java.
func strongest(a, b string) string {
	if a == AlertUnresponsive || b == AlertUnresponsive {
		return AlertUnresponsive
	}
	if a == "" {
		return b
	}
	return a
}

// Start starts the workers and the sweep, and resumes what a previous run
// left pending: remediations under way, starts, backoffs, watch windows.
func (e *Engine) Start(ctx context.Context) error {
	pols, err := e.state.RestartPolicies(ctx)
	if err != nil {
		return fmt.Errorf("reading restart policies: %w", err)
	}
	inFlight, err := e.state.InFlight(ctx)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started || e.closed {
		e.mu.Unlock()
		return errors.New("remediate: engine already started")
	}
	e.started = true
	e.mu.Unlock()
	now := e.cfg.Now()
	for _, p := range pols {
		switch {
		case p.StartingPID != 0:
			e.logger.Info("Resuming an interrupted start", "deployment_id", p.DeploymentID, "pid", p.StartingPID)
			e.retryAt(p.DeploymentID, now, AlertDown)
		case p.GaveUp(now):
		case p.ProbationPID != 0:
			e.retryAt(p.DeploymentID, p.ProbationUntil, AlertDown)
		case p.ConsecutiveFailures > 0:
			e.retryAt(p.DeploymentID, p.NextStart, AlertDown)
		}
	}
	if known, err := e.registry.IDs(ctx); err != nil {
		e.logger.Warn("Could not list deployments to remove stale lock files", "err", err)
	} else {
		e.removeStaleLocks(known)
	}
	// After the policies: an interrupted hung check's alert must win.
	for id, alert := range inFlight {
		e.logger.Info("Resuming an interrupted remediation", "deployment_id", id, "alert", alert)
		e.retryAt(id, now, alert)
	}
	for range e.cfg.Concurrency {
		e.workers.Add(1)
		go e.work()
	}
	e.logger.Info("Remediation workers started", "concurrency", e.cfg.Concurrency, "lock_dir", e.cfg.LockDir)
	if e.cfg.ReconcileInterval > 0 {
		e.workers.Add(1)
		go e.reconcile()
		e.logger.Info("Reconciling periodically", "interval", e.cfg.ReconcileInterval)
	}
	return nil
}

// Enqueue queues a deployment for alertname, never blocking and never twice.
func (e *Engine) Enqueue(deploymentID int64, alertname string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.logger.Debug("Engine is shutting down; not queueing deployment", "deployment_id", deploymentID)
		return
	}
	now := time.Now()
	if j := e.jobs[deploymentID]; j != nil {
		switch {
		case !j.running:
			j.alert = strongest(j.alert, alertname)
		case !j.again:
			j.again, j.againQueued, j.againAlert = true, now, alertname
		default:
			j.againAlert = strongest(j.againAlert, alertname)
		}
		return
	}
	e.jobs[deploymentID] = &job{queued: now, alert: alertname}
	e.queue = append(e.queue, deploymentID)
	e.cond.Signal()
}

func (e *Engine) work() {
	defer e.workers.Done()
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && !e.closed {
			e.cond.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			return
		}
		id := e.queue[0]
		e.queue = e.queue[1:]
		j := e.jobs[id]
		j.running = true
		t := trigger{alert: j.alert, queued: j.queued}
		e.mu.Unlock()

		e.noteInFlight(id, t.alert, true)
		_, _ = e.remediate(e.workCtx, id, t) // journaled, counted and logged
		if e.workCtx.Err() == nil {          // abandoned: the next run resumes it
			e.noteInFlight(id, t.alert, false)
		}

		e.mu.Lock()
		if j.again && !e.closed {
			j.running, j.again, j.queued, j.alert = false, false, j.againQueued, j.againAlert
			e.queue = append(e.queue, id)
			e.cond.Signal()
		} else {
			delete(e.jobs, id)
		}
		e.mu.Unlock()
	}
}

// noteInFlight lets a remediation under way survive a kill of the remediator.
func (e *Engine) noteInFlight(id int64, alert string, on bool) {
	ctx := context.WithoutCancel(e.workCtx)
	var err error
	if on {
		err = e.state.SetInFlight(ctx, id, alert)
	} else {
		err = e.state.ClearInFlight(ctx, id)
	}
	if err != nil {
		e.logger.Warn("Could not note a remediation under way", "deployment_id", id, "err", err)
	}
}

// retryAt queues the deployment again at t (the policy's clock).
func (e *Engine) retryAt(id int64, t time.Time, alertname string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.closed {
		return
	}
	if old := e.retries[id]; old != nil {
		old.Stop()
	}
	var timer *time.Timer
	// The callback takes e.mu, which is held until timer is assigned.
	timer = time.AfterFunc(max(t.Sub(e.cfg.Now()), 0), func() {
		e.mu.Lock()
		if e.retries[id] == timer {
			delete(e.retries, id)
		}
		e.mu.Unlock()
		e.Enqueue(id, alertname)
	})
	e.retries[id] = timer
}

// scheduleRetry retries a transient failure; it returns the journal's note.
func (e *Engine) scheduleRetry(id int64, t trigger) string {
	e.mu.Lock()
	running := e.started && !e.closed && !t.sweep
	if running {
		e.attempts[id]++
	}
	attempt := e.attempts[id]
	e.mu.Unlock()
	if !running {
		return ""
	}
	if attempt > e.cfg.RetryAttempts {
		e.clearAttempts(id)
		e.metrics.retries.WithLabelValues("exhausted").Inc()
		return fmt.Sprintf("; gave up after %d retries", e.cfg.RetryAttempts)
	}
	wait := e.cfg.RetryBackoff << (attempt - 1)
	e.metrics.retries.WithLabelValues("scheduled").Inc()
	e.retryAt(id, e.cfg.Now().Add(wait), t.alert)
	return fmt.Sprintf("; retry %d of %d in %s", attempt, e.cfg.RetryAttempts, wait)
}

func (e *Engine) clearAttempts(id int64) {
	e.mu.Lock()
	delete(e.attempts, id)
	e.mu.Unlock()
}

func (e *Engine) queueLength() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return float64(len(e.queue))
}

// Shutdown drops what is queued and lets remediations in progress finish
// until ctx ends; abandoning them is safe (the next run resumes them).
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		close(e.closing)
	}
	e.closed = true
	dropped := len(e.queue)
	for _, id := range e.queue {
		delete(e.jobs, id)
	}
	e.queue = nil
	for id, t := range e.retries {
		t.Stop()
		delete(e.retries, id)
	}
	e.cond.Broadcast()
	e.mu.Unlock()
	if dropped > 0 {
		e.logger.Info("Dropped queued remediations on shutdown", "deployments", dropped)
	}
	e.stopWatch()

	done := allDone(&e.workers, &e.watchers)
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		e.logger.Warn("Abandoning remediations in progress; started processes are left running")
		err = ctx.Err()
	}
	e.stopWork()
	<-done
	return err
}

func allDone(groups ...*sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for _, g := range groups {
			g.Wait()
		}
		close(done)
	}()
	return done
}
