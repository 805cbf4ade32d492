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
	// LockDir holds a lock file per deployment; "" means steam-overseer.locks
	// beside Steam's database, shared by every remediator of the home.
	LockDir string
	// ProcRoot is the procfs mount processes are read from; "" means /proc.
	ProcRoot string
	// JavaPath is the java started; "" means "java" on PATH at each start.
	// Whatever the path, argv[0] is "java", as Steam's.
	JavaPath string
	// JavaOpts go between java and -jar; each starts with "-".
	JavaOpts    []string
	Concurrency int
	// StartTimeout is how long a started or adopted java has to answer the probe.
	StartTimeout time.Duration
	// A process is stopped as Steam stops one: SIGINT every StopInterval for
	// StopTimeout, then SIGKILL.
	StopTimeout  time.Duration
	StopInterval time.Duration
	// WatchAfterReady is how long a ready process must live for its start to count.
	WatchAfterReady time.Duration
	// RecordTimeout bounds the retries of writing a PID while Steam holds its lock.
	RecordTimeout time.Duration
	// ProbePath and ProbeTimeout: a deployment serves when GET ProbePath
	// answers 200 within ProbeTimeout.
	ProbePath    string
	ProbeTimeout time.Duration
	// StartGrace: a process younger than this is never stopped as hung.
	StartGrace time.Duration
	// HungAfter: before a live java is stopped as hung, HungProbes probes in a
	// row, spread over at least this long, must fail.
	HungAfter  time.Duration
	HungProbes int
	// RetryAttempts and RetryBackoff: a remediation that failed on a
	// transient error is tried again this many times, the wait doubling.
	RetryAttempts int
	RetryBackoff  time.Duration
	// ReconcileInterval, if positive, makes Start sweep every deployment at
	// once and then this often.
	ReconcileInterval time.Duration
	Policy            Policy
	// Now is the restart policy's clock; nil means time.Now.
	Now func() time.Time
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
