package remediate

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// testConfig shortens every wait of the production defaults so that the
// tests run in seconds; each test lengthens what it needs.
func testConfig(h *testkit.Home, st *state.DB) Config {
	return Config{
		Home:            h.Home,
		State:           st,
		JavaPath:        h.Java,
		StartTimeout:    5 * time.Second,
		StopTimeout:     300 * time.Millisecond,
		StopInterval:    50 * time.Millisecond,
		WatchAfterReady: time.Minute,
		RecordTimeout:   10 * time.Second,
		Policy: Policy{
			InitialBackoff: 20 * time.Millisecond,
			MaxBackoff:     80 * time.Millisecond,
			Jitter:         -1,
		},
	}
}

type testEngine struct {
	*Engine
	h     *testkit.Home
	state *state.DB
	reg   *prometheus.Registry
	log   *testkit.Buffer
}

// waitLogged waits until the engine logged a line holding msg.
func (e *testEngine) waitLogged(t testing.TB, msg string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "the log line "+msg, func() bool {
		return strings.Contains(e.log.String(), msg)
	})
}

// newEngine returns an engine on h with its own state database at the
// default path. modify changes the test config.
func newEngine(t testing.TB, h *testkit.Home, modify ...func(*Config)) *testEngine {
	t.Helper()
	st, err := state.Open(context.Background(), h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(h, st)
	for _, m := range modify {
		m(&cfg)
	}
	reg := prometheus.NewRegistry()
	log := &testkit.Buffer{}
	e, err := New(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		st.Close()
	})
	return &testEngine{Engine: e, h: h, state: st, reg: reg, log: log}
}

// idle waits until no deployment is queued or being remediated.
func (e *testEngine) idle(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "the queue to drain", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.jobs) == 0
	})
}

// journal returns the deployment's journal, oldest first.
func (e *testEngine) journal(t *testing.T, id int64) []state.Entry {
	t.Helper()
	return readJournal(t, e.state, id)
}

func readJournal(t *testing.T, st *state.DB, id int64) []state.Entry {
	t.Helper()
	es, err := st.Journal(context.Background(), id, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

func countActions(es []state.Entry, action, result string) int {
	n := 0
	for _, e := range es {
		if e.Action == action && (result == "" || e.Result == result) {
			n++
		}
	}
	return n
}

// entryWhy is a journal entry's reason with its detail, as Outcome.Why.
func entryWhy(e state.Entry) string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

func describeJournal(es []state.Entry) string {
	var sb strings.Builder
	for _, e := range es {
		fmt.Fprintf(&sb, "\n  %s %s %s (%s) old=%d new=%d", e.Time.Format("15:04:05.000"), e.Action, e.Result, entryWhy(e), e.OldPID, e.NewPID)
	}
	return sb.String()
}

// running asserts that the deployment's row holds a PID verified as its
// java, and that the service answers /ping; it returns the PID.
func running(t *testing.T, h *testkit.Home, id int64) int64 {
	t.Helper()
	d := h.Deployment(id)
	identity, ok := d.Identity()
	if !ok {
		t.Fatalf("deployment %d cannot be identified (%s)", id, d.Problem)
	}
	if p := inspector(t).Inspect(int(d.PID), identity); p.Status != procid.StatusRunning {
		t.Fatalf("deployment %d: row PID %d is %s, want running", id, d.PID, p.Status)
	}
	if err := testkit.WaitReady(context.Background(), int(d.Port), 5*time.Second); err != nil {
		t.Fatalf("deployment %d: %v", id, err)
	}
	return d.PID
}

var (
	inspectorOnce sync.Once
	testInspector *procid.Inspector
)

func inspector(t testing.TB) *procid.Inspector {
	inspectorOnce.Do(func() {
		var err error
		if testInspector, err = procid.NewInspector(""); err != nil {
			t.Fatal(err)
		}
	})
	return testInspector
}

// alive reports whether pid exists and is not a zombie.
func alive(t testing.TB, pid int) bool {
	return testkit.Alive(pid)
}

// startTicks returns pid's start time, to tell it from a reused PID.
func startTicks(t testing.TB, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Field 22 counts from after the command, which may hold spaces.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
