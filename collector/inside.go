package collector

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// Inside keeps what each verified running deployment's JVM last said about
// itself: its /stats page and its performance counters. The prober's round
// reads them (Read is its After), so no scrape waits on a JVM; at 1000
// deployments the counters alone cost ~110 ms of CPU (BenchmarkReadFile).
type Inside struct {
	proc       string
	timeout    time.Duration
	readErrors *ReadErrors
	logger     *slog.Logger

	reading chan struct{} // bounds the counters read at once, each 50 KB of garbage

	mu     sync.Mutex
	latest map[int64]reading // by deployment id
}

type reading struct {
	started float64 // with the PID, names the process read
	RunningDeployment
}

// NewInside reads under proc (/proc but in tests), each /stats within
// timeout, counting failures in readErrors.
func NewInside(proc string, timeout time.Duration, readErrors *ReadErrors, logger *slog.Logger) *Inside {
	return &Inside{proc: proc, timeout: timeout, readErrors: readErrors, logger: logger,
		reading: make(chan struct{}, runtime.GOMAXPROCS(0)), latest: map[int64]reading{}}
}

// Read reads t's JVM counters and, if it answered its probe r, its /stats.
func (in *Inside) Read(ctx context.Context, t probe.Target, r probe.Result) {
	d := RunningDeployment{ID: strconv.FormatInt(t.ID, 10), Name: t.Name, PID: t.PID, UID: t.UID}
	in.mu.Lock()
	prev, ok := in.latest[t.ID]
	in.mu.Unlock()
	if ok && prev.PID == t.PID && prev.started == t.Started {
		d.NSPID = prev.NSPID
	} else if nsPID, err := hsperf.NamespacePID(in.proc, t.PID); err == nil {
		d.NSPID = nsPID
	} else {
		in.logger.Debug("Cannot read a deployment's namespace PID", "deployment_id", t.ID, "pid", t.PID, "err", err)
	}
	if d.NSPID > 0 {
		d.JVM = in.readJVM(d)
	}
	if r.Success {
		timed, cancel := context.WithTimeout(ctx, in.timeout)
		s, err := scorestats.Fetch(timed, scorestats.Client, "http://127.0.0.1:"+strconv.Itoa(t.Port))
		cancel()
		if err != nil && ctx.Err() == nil { // stopping is no failure
			in.readErrors.AddStats(err)
			in.logger.Debug("Cannot read a deployment's /stats", "deployment_id", t.ID, "err", err)
		}
		d.Stats = s
	}
	in.mu.Lock()
	in.latest[t.ID] = reading{started: t.Started, RunningDeployment: d}
	in.mu.Unlock()
}

// readJVM returns d's JVM counters, nil if there are none to trust.
func (in *Inside) readJVM(d RunningDeployment) *hsperf.JVM {
	in.reading <- struct{}{}
	j, err := hsperf.ReadJVM(in.proc, d.PID, d.NSPID, d.UID)
	<-in.reading
	if err == nil {
		return &j
	}
	// A process that ended since the observation is no failure to read.
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, hsperf.ErrNotFound) {
		in.readErrors.Add(SourceHSPerfData, hsperfReason(err))
	}
	in.logger.Debug("Cannot read a deployment's JVM counters", "deployment_id", d.ID, "pid", d.PID, "err", err)
	return nil
}

// Of returns the readings of the outcomes' processes, in their order, and
// forgets the deployments that no longer run.
func (in *Inside) Of(outcomes []probe.Outcome) []RunningDeployment {
	in.mu.Lock()
	defer in.mu.Unlock()
	ds := make([]RunningDeployment, 0, len(outcomes))
	for _, o := range outcomes {
		if r, ok := in.latest[o.ID]; ok && r.PID == o.PID && r.started == o.Started {
			ds = append(ds, r.RunningDeployment)
		}
	}
	if len(in.latest) > len(ds) {
		running := make(map[int64]bool, len(outcomes))
		for _, o := range outcomes {
			running[o.ID] = true
		}
		for id := range in.latest {
			if !running[id] {
				delete(in.latest, id)
			}
		}
	}
	return ds
}
