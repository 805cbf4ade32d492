package fakescorer

import (
	"net/http"
	"sync"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// warmUpCount is the StatsServlet's: the first calls, slow while the JVM
// compiles, are kept apart from averageAfterWarmupTime.
const warmUpCount = 5

// stats counts predictions as Steam's StatsServlet does, for /stats.
type stats struct {
	start time.Time

	mu         sync.Mutex
	last       time.Time
	prediction calls
	get, post  calls
}

type calls struct {
	count, totalMs, totalSquaredMs, warmupMs, warmupSquaredMs, lastMs float64
}

func (c *calls) add(ms float64) {
	c.count++
	c.totalMs += ms
	c.totalSquaredMs += ms * ms
	if c.count <= warmUpCount {
		c.warmupMs += ms
		c.warmupSquaredMs += ms * ms
	}
	c.lastMs = ms
}

func (c calls) times() scorestats.Times {
	t := scorestats.Times{Count: c.count, TotalTimeMs: c.totalMs, TotalTimeSquaredMs: c.totalSquaredMs,
		WarmupTimeMs: c.warmupMs, WarmupTimeSquaredMs: c.warmupSquaredMs, LastMs: c.lastMs}
	if c.count > 0 {
		t.AverageTime = c.totalMs / c.count
	}
	if c.count > warmUpCount {
		t.AverageAfterWarmupTime = (c.totalMs - c.warmupMs) / (c.count - warmUpCount)
	}
	return t
}

// predicted counts one /predict call that began at begin.
func (s *stats) predicted(method string, begin time.Time) {
	now := time.Now()
	ms := float64(now.Sub(begin).Microseconds()) / 1000
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = now
	s.prediction.add(ms)
	if method == http.MethodPost {
		s.post.add(ms)
	} else {
		s.get.add(ms)
	}
}

// answer is /stats in the StatsServlet's shape.
func (s *stats) answer() scorestats.Stats {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := scorestats.Stats{
		StartTime:    s.start.UnixMilli(),
		StartTimeUTC: utc(s.start),
		UpTimeMs:     now.Sub(s.start).Milliseconds(),
		WarmUpCount:  warmUpCount,
		Prediction:   s.prediction.times(),
		Get:          s.get.times(),
		Post:         s.post.times(),
	}
	if !s.last.IsZero() {
		a.LastTime, a.LastTimeUTC = s.last.UnixMilli(), utc(s.last)
		a.LastTimeAgoMs = now.Sub(s.last).Milliseconds()
	}
	return a
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
