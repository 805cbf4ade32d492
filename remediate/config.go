package remediate

import (
	"path/filepath"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Defaults of Config.
const (
	DefaultConcurrency     = 4
	DefaultStartTimeout    = 120 * time.Second
	DefaultStopTimeout     = 10 * time.Second // Steam's SIGINT phase
	DefaultStopInterval    = time.Second      // Steam's pause between two SIGINTs
	DefaultWatchAfterReady = 60 * time.Second
	DefaultRecordTimeout   = time.Minute
	DefaultProbePath       = probe.DefaultPath
	DefaultProbeTimeout    = probe.DefaultTimeout
	DefaultStartGrace      = probe.DefaultStartGrace
	DefaultHungAfter       = 15 * time.Second
	DefaultHungProbes      = 3
	DefaultRetryAttempts   = 5
	DefaultRetryBackoff    = 2 * time.Second
)

// Config is how an Engine remediates.
type Config struct {
	Home  steam.Home
	State *state.DB // journal and restart policy, open read-write
	// LockDir "" is steam-overseer.locks beside steam.db, shared by every remediator of the home.
	LockDir  string
	ProcRoot string
	// JavaPath "" is "java" on PATH at each start; argv[0] is "java" whatever the path.
	JavaPath     string
	JavaOpts     []string
	Concurrency  int
	StartTimeout time.Duration
	// As Steam stops a process: SIGINT every StopInterval for StopTimeout, then SIGKILL.
	StopTimeout  time.Duration
	StopInterval time.Duration
	// WatchAfterReady is how long a ready process must live for its start to count.
	WatchAfterReady time.Duration
	// RecordTimeout bounds the retries of writing a PID while Steam holds its lock.
	RecordTimeout time.Duration
	ProbePath     string
	ProbeTimeout  time.Duration
	// StartGrace: a process younger than this is never stopped as hung.
	StartGrace time.Duration
	// HungProbes failed probes in a row, over at least HungAfter, make a live java hung.
	HungAfter  time.Duration
	HungProbes int
	// A transient error is retried RetryAttempts times, the wait doubling from RetryBackoff.
	RetryAttempts int
	RetryBackoff  time.Duration
	// ReconcileInterval, if positive, makes Start sweep at once and then this often.
	ReconcileInterval time.Duration
	Policy            Policy
	Now               func() time.Time
}

func (c Config) withDefaults() Config {
	if c.LockDir == "" {
		c.LockDir = filepath.Join(filepath.Dir(c.Home.DBPath()), "steam-overseer.locks")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ProbePath == "" {
		c.ProbePath = DefaultProbePath
	}
	if c.HungProbes <= 0 {
		c.HungProbes = DefaultHungProbes
	}
	if c.RetryAttempts == 0 {
		c.RetryAttempts = DefaultRetryAttempts
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&c.StartTimeout, DefaultStartTimeout)
	set(&c.StopTimeout, DefaultStopTimeout)
	set(&c.StopInterval, DefaultStopInterval)
	set(&c.WatchAfterReady, DefaultWatchAfterReady)
	set(&c.RecordTimeout, DefaultRecordTimeout)
	set(&c.ProbeTimeout, DefaultProbeTimeout)
	set(&c.HungAfter, DefaultHungAfter)
	set(&c.RetryBackoff, DefaultRetryBackoff)
	if c.StartGrace < 0 {
		c.StartGrace = 0
	} else if c.StartGrace == 0 {
		c.StartGrace = DefaultStartGrace
	}
	c.Policy = c.Policy.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
