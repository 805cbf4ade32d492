package main

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// The default memory limit follows the most series a scrape wrote (the
// registry's deployments' guessed at start); a flag or GOMEMLIMIT sets it instead.
func TestLimitMemory(t *testing.T) {
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	h := testkit.NewHome(t)
	h.AddScorers(3, 24100, testkit.Behaviour{})
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	scrape := func(h http.Handler) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}

	written := 0
	metrics := limitMemory(context.Background(), promslog.NewNopLogger(), ok, 0, h.Home, func() int { return written })
	for _, step := range []struct {
		name    string
		written int
		want    int64
	}{
		{"at start: the registry's deployments", -1, baseMemoryLimit + 3*memoryLimitPerDeployment},
		{"a scrape of more series", 500, baseMemoryLimit + 500*memoryLimitPerSeries},
		{"a failed registry read", 40, baseMemoryLimit + 500*memoryLimitPerSeries},
		{"a scrape of fewer", 400, baseMemoryLimit + 500*memoryLimitPerSeries},
	} {
		if step.written >= 0 {
			written = step.written
			scrape(metrics)
		}
		if got := debug.SetMemoryLimit(-1); got != step.want {
			t.Errorf("%s: limit %d, want %d", step.name, got, step.want)
		}
	}

	limitMemory(context.Background(), promslog.NewNopLogger(), ok, 64<<20, h.Home, func() int { return 1 })
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("--runtime.memory-limit=64MiB: limit %d", got)
	}
	t.Setenv("GOMEMLIMIT", "100MiB")
	debug.SetMemoryLimit(math.MaxInt64)
	scrape(limitMemory(context.Background(), promslog.NewNopLogger(), ok, 64<<20, h.Home, func() int { return 1000 }))
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: limit changed to %d", got)
	}
}
