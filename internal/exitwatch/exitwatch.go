// Package exitwatch learns the moment a Steam deployment's java exits,
// through a pidfd opened before the identity check: it pins the very process
// verified, so a reused PID is never mistaken for it.
package exitwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Defaults for the zero values of Options.
const (
	DefaultInterval = time.Second
	// DefaultSettle lets a row changed with the exit settle, but not Steam's
	// own stop (its row goes up to a second after the java): waiting that out
	// would cost every death a second. A start that races Steam's stop is
	// cancelled by the remediator, which writes only a started row and stops
	// its java once the row is gone.
	DefaultSettle = 250 * time.Millisecond
)

// verifyRetry spaces the retries of a java that could not be verified.
const verifyRetry = 30 * time.Second

// Reasons a deployment is reported down.
const (
	ReasonExited    = "exited"     // the watched java exited
	ReasonDead      = "dead"       // the recorded PID was gone when first looked at
	ReasonZombie    = "zombie"     // exited, not yet reaped by its parent
	ReasonPIDReused = "pid_reused" // the recorded PID runs something else
)

// Event says that a deployment went down (its row still says started with
// that PID) or is up again, verified, or no longer to be running.
type Event struct {
	ID     int64
	Name   string
	PID    int64
	Down   bool
	Reason string    // why Down; empty when up
	At     time.Time // when the exit was seen, or the deployment verified
}

// Options tune a Watcher; zero values mean the defaults.
type Options struct {
	Interval time.Duration // between two reads of the registry
	Settle   time.Duration // how long an exit waits for Steam to change the row
}

// Watcher follows the registry and watches every started deployment's java.
type Watcher struct {
	registry *steam.Registry
	observer *observe.Observer
	notify   func(Event)
	logger   *slog.Logger
	opts     Options
	metrics  *metrics

	epfd   int
	wakeFd int // an eventfd that ends the epoll loop
	exits  chan int32
	stop   chan struct{} // closed when Run returns

	deployments map[int64]*watched
	byFd        map[int32]int64
	readFailing bool

	mu sync.Mutex // guards byFd between Run and the epoll loop
}

// watched is one started deployment and what is known of its java.
type watched struct {
	name     string
	pid      int64
	fd       int       // the pidfd, -1 when not watching
	pending  bool      // not verified yet (unreadable process, no identity)
	retryAt  time.Time // when a pending verification that failed is tried again
	exitedAt time.Time // set while an exit settles
	reason   string
	down     bool // reported down
}

// New returns a watcher that calls notify from its own goroutine; notify
// must not block. observer verifies each java (it may be shared).
func New(registry *steam.Registry, observer *observe.Observer, notify func(Event), logger *slog.Logger, opts Options) (*Watcher, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating epoll instance: %w", err)
	}
	wakeFd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("creating eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFd,
		&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakeFd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakeFd)
		return nil, fmt.Errorf("watching eventfd: %w", err)
	}
	return &Watcher{
		registry: registry, observer: observer, notify: notify, logger: logger, opts: opts,
		metrics: newMetrics(),
		epfd:    epfd, wakeFd: wakeFd,
		exits:       make(chan int32, 64),
		stop:        make(chan struct{}),
		deployments: map[int64]*watched{},
		byFd:        map[int32]int64{},
	}, nil
}

// Run watches until ctx ends, then releases every pidfd.
func (w *Watcher) Run(ctx context.Context) {
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); w.epollLoop() }()
	defer func() {
		close(w.stop)
		_, _ = unix.Write(w.wakeFd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		<-loopDone
		for _, d := range w.deployments {
			w.unwatch(d)
		}
		unix.Close(w.epfd)
		unix.Close(w.wakeFd)
	}()
	ticker := time.NewTicker(w.opts.Interval)
	defer ticker.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	w.sync(ctx)
	for {
		if next, ok := w.nextSettle(); ok {
			settle.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			w.sync(ctx)
		case <-settle.C:
			w.sync(ctx)
		case fd := <-w.exits:
			w.exited(fd)
		}
		settle.Stop()
	}
}

func (w *Watcher) epollLoop() {
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.logger.Error("Waiting for deployment exits", "err", err)
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == w.wakeFd {
				return
			}
			// Reported once: a level-triggered pidfd would wake us forever.
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
			select {
			case w.exits <- ev.Fd:
			case <-w.stop:
				return
			}
		}
	}
}

// sync brings the watches in line with the registry and reports settled exits.
func (w *Watcher) sync(ctx context.Context) {
	start := time.Now()
	rows, err := w.registry.Rows(ctx)
	w.metrics.reads.Inc()
	if err != nil {
		w.metrics.readErrors.Inc()
		if !w.readFailing {
			w.logger.Error("Reading Steam's registry for the exit watch", "err", err)
		}
		w.readFailing = true
		return
	}
	if w.readFailing {
		w.logger.Info("Reading Steam's registry for the exit watch again")
	}
	w.readFailing = false

	seen := make(map[int64]bool, len(rows))
	var verify []int64
	for _, r := range rows {
		if r.State != steam.StateStarted || r.PID <= 0 {
			continue
		}
		seen[r.ID] = true
		d, ok := w.deployments[r.ID]
		switch {
		case !ok:
			d = &watched{pid: r.PID, fd: -1, pending: true}
			w.deployments[r.ID] = d
		case d.pid != r.PID:
			// Restarted (by Steam or the remediator): the old exit is moot.
			w.unwatch(d)
			d.pid, d.pending, d.retryAt, d.exitedAt, d.reason = r.PID, true, time.Time{}, time.Time{}, ""
		}
		if d.pending && !start.Before(d.retryAt) {
			verify = append(verify, r.ID)
		}
	}
	for id, d := range w.deployments {
		if !seen[id] {
			// Deleted or no longer started: stopped, not dead.
			w.unwatch(d)
			delete(w.deployments, id)
			if !d.exitedAt.IsZero() {
				w.metrics.stopped.Inc()
			}
			if d.down {
				w.report(Event{ID: id, Name: d.name, PID: d.pid, At: start})
			}
		}
	}
	if len(verify) > 0 {
		w.verifyAll(ctx, verify)
	}
	for id, d := range w.deployments {
		if !d.exitedAt.IsZero() && start.Sub(d.exitedAt) >= w.opts.Settle {
			d.exitedAt, d.down = time.Time{}, true
			w.metrics.exits.WithLabelValues(d.reason).Inc()
			w.report(Event{ID: id, Name: d.name, PID: d.pid, Down: true, Reason: d.reason, At: start})
		}
	}
	w.metrics.syncSeconds.Observe(time.Since(start).Seconds())
}

// verifyAll resolves the identities of ids in one registry read.
func (w *Watcher) verifyAll(ctx context.Context, ids []int64) {
	ds, err := w.registry.Deployments(ctx)
	if err != nil {
		w.metrics.readErrors.Inc()
		w.logger.Error("Reading deployments to verify", "err", err)
		return
	}
	byID := make(map[int64]steam.Deployment, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	for _, id := range ids {
		dep, ok := byID[id]
		d := w.deployments[id]
		if !ok || dep.PID != d.pid || dep.State != steam.StateStarted {
			continue // changed since Rows: the next sync sees it
		}
		d.name = dep.Name
		// Each retry costs a read of every deployment: not every second.
		d.retryAt = time.Now().Add(verifyRetry)
		w.verify(id, d, dep)
	}
}

// verify opens a pidfd on d's PID and only then checks the process's
// identity, so that what is watched is what was verified.
func (w *Watcher) verify(id int64, d *watched, dep steam.Deployment) {
	if _, ok := dep.Identity(); !ok || dep.Problem != "" {
		// Unrecognisable, never reported: the scrape's steam_deployment_status says so.
		return
	}
	now := time.Now()
	fd, err := unix.PidfdOpen(int(d.pid), unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		w.settleExit(d, now, ReasonDead)
		return
	}
	if err != nil {
		w.logger.Warn("Opening pidfd", "deployment_id", id, "pid", d.pid, "err", err)
		return
	}
	p, err := w.observer.Verify(dep)
	if err != nil {
		unix.Close(fd)
		return
	}
	switch p.Status {
	case procid.StatusRunning:
		if exited(fd) {
			// Exited during the look: the /proc reads may have been of
			// another process that took the PID.
			unix.Close(fd)
			w.settleExit(d, now, ReasonExited)
			return
		}
	case procid.StatusDead, procid.StatusZombie, procid.StatusPIDReused:
		unix.Close(fd)
		reason := map[procid.Status]string{procid.StatusDead: ReasonDead,
			procid.StatusZombie: ReasonZombie, procid.StatusPIDReused: ReasonPIDReused}[p.Status]
		w.settleExit(d, now, reason)
		return
	default:
		unix.Close(fd)
		w.logger.Debug("Cannot verify process", "deployment_id", id, "pid", d.pid, "status", p.Status, "err", p.Err)
		return
	}
	w.mu.Lock()
	w.byFd[int32(fd)] = id
	w.mu.Unlock()
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		w.closeFd(fd)
		w.logger.Warn("Watching pidfd", "deployment_id", id, "pid", d.pid, "err", err)
		return
	}
	d.fd, d.pending = fd, false
	w.metrics.watched.Inc()
	if d.down {
		d.down = false
		w.report(Event{ID: id, Name: d.name, PID: d.pid, At: now})
	}
}

func (w *Watcher) exited(fd int32) {
	w.mu.Lock()
	id, ok := w.byFd[fd]
	w.mu.Unlock()
	d := w.deployments[id]
	// The fd may have been closed and its number reused since the event.
	if !ok || d == nil || d.fd != int(fd) || !exited(int(fd)) {
		return
	}
	w.unwatch(d)
	w.settleExit(d, time.Now(), ReasonExited)
}

func (w *Watcher) settleExit(d *watched, at time.Time, reason string) {
	d.pending = false
	if d.down {
		return
	}
	d.exitedAt, d.reason = at, reason
}

func (w *Watcher) nextSettle() (time.Time, bool) {
	var next time.Time
	for _, d := range w.deployments {
		if t := d.exitedAt; !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next.Add(w.opts.Settle), !next.IsZero()
}

func (w *Watcher) unwatch(d *watched) {
	if d.fd < 0 {
		return
	}
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, d.fd, nil)
	w.closeFd(d.fd)
	d.fd = -1
	w.metrics.watched.Dec()
}

func (w *Watcher) closeFd(fd int) {
	w.mu.Lock()
	delete(w.byFd, int32(fd))
	w.mu.Unlock()
	unix.Close(fd)
}

func (w *Watcher) report(ev Event) {
	w.logger.Debug("Deployment state", "deployment_id", ev.ID, "pid", ev.PID, "down", ev.Down, "reason", ev.Reason)
	w.notify(ev)
}

func exited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1
}

// Describe implements prometheus.Collector.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range w.metrics.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	for _, c := range w.metrics.all() {
		c.Collect(ch)
	}
}

var _ prometheus.Collector = (*Watcher)(nil)
