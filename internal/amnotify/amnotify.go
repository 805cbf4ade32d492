// Package amnotify sends alerts to every Alertmanager's v2 API as
// Prometheus' notifier does, re-sent while they fire; each Alertmanager has
// its own bounded queue and sender, so the caller never waits.
package amnotify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults for the zero values of Options.
const (
	// Shorter than Prometheus' 1m: an alert lost by an Alertmanager restart
	// is a remediation delayed.
	DefaultResendDelay   = 15 * time.Second
	DefaultTimeout       = 10 * time.Second
	DefaultQueueCapacity = 10000
	// A resolved alert is re-sent this long, as in Prometheus.
	resolvedRetention = 15 * time.Minute
	maxBatch          = 64
	minBackoff        = 100 * time.Millisecond
	// An Alertmanager back from a restart hears of an exit within 2s.
	maxBackoff = 2 * time.Second
)

// Alert is one alert as Alertmanager's v2 API takes it (postableAlert).
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`

	resolvedAt time.Time // zero while the alert fires
}

// Options configure a Notifier.
type Options struct {
	Alertmanagers []string // base URLs; alerts go to <url>/api/v2/alerts
	ResendDelay   time.Duration
	Timeout       time.Duration // of one POST
	QueueCapacity int           // alerts per Alertmanager
	Client        *http.Client  // nil: a plain client
}

// Notifier keeps the alerts that fire and sends them.
type Notifier struct {
	opts    Options
	logger  *slog.Logger
	client  *http.Client
	metrics *metrics

	mu     sync.Mutex
	active map[string]*Alert // by key; resolved ones until resolvedRetention passes
	ams    []*alertmanager
}

// alertmanager is one Alertmanager and its queue.
type alertmanager struct {
	url     string // the POST target
	name    string // the metrics' label: the target without user info
	pending map[string]Alert
	order   []string // pending's keys, oldest first
	wake    chan struct{}
	healthy bool
}

// New returns a notifier for the given Alertmanagers; Run sends.
func New(opts Options, logger *slog.Logger) (*Notifier, error) {
	if len(opts.Alertmanagers) == 0 {
		return nil, fmt.Errorf("no Alertmanager configured")
	}
	if opts.ResendDelay <= 0 {
		opts.ResendDelay = DefaultResendDelay
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.QueueCapacity <= 0 {
		opts.QueueCapacity = DefaultQueueCapacity
	}
	n := &Notifier{opts: opts, logger: logger, client: opts.Client, active: map[string]*Alert{}}
	if n.client == nil {
		n.client = &http.Client{}
	}
	for _, raw := range opts.Alertmanagers {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager URL %q: want http(s)://host[:port][/prefix]", raw)
		}
		u = u.JoinPath("api", "v2", "alerts")
		name := *u
		name.User = nil
		n.ams = append(n.ams, &alertmanager{url: u.String(), name: name.String(),
			pending: map[string]Alert{}, wake: make(chan struct{}, 1), healthy: true})
	}
	n.metrics = newMetrics(n)
	return n, nil
}

// Fire makes the alert under key fire from startsAt, unless it already
// does; it never blocks.
func (n *Notifier) Fire(key string, labels, annotations map[string]string, startsAt time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if a, ok := n.active[key]; ok && a.resolvedAt.IsZero() && maps.Equal(a.Labels, labels) {
		return
	}
	a := &Alert{Labels: labels, Annotations: annotations, StartsAt: startsAt}
	n.active[key] = a
	n.refresh(a, time.Now())
	n.enqueueAll(key, *a)
}

// Resolve resolves the alert under key if it fires; it never blocks.
func (n *Notifier) Resolve(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.active[key]
	if !ok || !a.resolvedAt.IsZero() {
		return
	}
	a.resolvedAt = time.Now()
	a.EndsAt = a.resolvedAt
	n.enqueueAll(key, *a)
}

// refresh pushes a firing alert's endsAt forward, as Prometheus does: if
// the exporter stops sending, Alertmanager resolves it by itself.
func (n *Notifier) refresh(a *Alert, now time.Time) {
	a.EndsAt = now.Add(4 * n.opts.ResendDelay)
}

// Run sends until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, am := range n.ams {
		wg.Go(func() { n.send(ctx, am) })
	}
	ticker := time.NewTicker(n.opts.ResendDelay)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-ticker.C:
			n.resend(time.Now())
		}
	}
}

func (n *Notifier) resend(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for key, a := range n.active {
		if !a.resolvedAt.IsZero() {
			if now.Sub(a.resolvedAt) > resolvedRetention {
				delete(n.active, key)
				continue
			}
		} else {
			n.refresh(a, now)
		}
		n.enqueueAll(key, *a)
	}
}

func (n *Notifier) enqueueAll(key string, a Alert) {
	for _, am := range n.ams {
		n.enqueue(am, key, a)
	}
}

// enqueue replaces a queued alert of the same key, or appends a while the
// queue has room; n.mu is held.
func (n *Notifier) enqueue(am *alertmanager, key string, a Alert) {
	if _, ok := am.pending[key]; !ok {
		if len(am.order) >= n.opts.QueueCapacity {
			n.metrics.dropped.Inc()
			return
		}
		am.order = append(am.order, key)
	}
	am.pending[key] = a
	select {
	case am.wake <- struct{}{}:
	default:
	}
}

// send posts am's queue in batches, retrying with backoff while it fails.
func (n *Notifier) send(ctx context.Context, am *alertmanager) {
	backoff := minBackoff
	for {
		keys, batch := n.take(am)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-am.wake:
				continue
			}
		}
		err := n.post(ctx, am, batch)
		n.metrics.sent.WithLabelValues(am.name).Add(float64(len(batch)))
		if err == nil {
			backoff = minBackoff
			n.setHealthy(am, nil)
			continue
		}
		n.metrics.errors.WithLabelValues(am.name).Add(float64(len(batch)))
		var status *statusError
		if errors.As(err, &status) && status.code < 500 {
			// Alertmanager is there but refuses these alerts: sending them
			// again cannot help.
			n.logger.Warn("Alertmanager refused alerts", "alertmanager", am.name, "alerts", len(batch), "err", err)
			continue
		}
		n.setHealthy(am, err)
		n.requeue(am, keys, batch)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (n *Notifier) take(am *alertmanager) ([]string, []Alert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := min(len(am.order), maxBatch)
	keys := am.order[:k:k]
	am.order = am.order[k:]
	batch := make([]Alert, 0, k)
	for _, key := range keys {
		batch = append(batch, am.pending[key])
		delete(am.pending, key)
	}
	return keys, batch
}

// requeue puts a failed batch back at the head of the queue, unless a newer
// state of the same alert was queued meanwhile.
func (n *Notifier) requeue(am *alertmanager, keys []string, batch []Alert) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var back []string
	for i, key := range keys {
		if _, newer := am.pending[key]; newer {
			continue
		}
		if len(am.order)+len(back) >= n.opts.QueueCapacity {
			n.metrics.dropped.Inc()
			continue
		}
		am.pending[key] = batch[i]
		back = append(back, key)
	}
	am.order = append(back, am.order...)
}

// setHealthy logs a change of am's state only. An Alertmanager back from a
// failure is sent every alert again: it may have restarted and lost them.
func (n *Notifier) setHealthy(am *alertmanager, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	healthy := err == nil
	if healthy == am.healthy {
		return
	}
	am.healthy = healthy
	if !healthy {
		n.logger.Warn("Sending alerts to Alertmanager failed", "alertmanager", am.name, "err", err)
		return
	}
	n.logger.Info("Sending alerts to Alertmanager again", "alertmanager", am.name)
	for key, a := range n.active {
		n.enqueue(am, key, *a)
	}
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

func (n *Notifier) post(ctx context.Context, am *alertmanager, batch []Alert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encoding alerts: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("posting alerts: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "steam-overseer")
	begin := time.Now()
	resp, err := n.client.Do(req)
	n.metrics.latency.WithLabelValues(am.name).Observe(time.Since(begin).Seconds())
	if err != nil {
		return fmt.Errorf("posting alerts: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return &statusError{code: resp.StatusCode, body: string(bytes.TrimSpace(msg))}
	}
	return nil
}
