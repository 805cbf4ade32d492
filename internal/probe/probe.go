// Package probe asks a deployment's scoring service whether it serves: a
// verified, live JVM may still answer nothing; only a request tells.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults shared by the exporter, the remediator and the status command.
const (
	DefaultPath        = "/ping"
	DefaultTimeout     = 2 * time.Second
	DefaultInterval    = 10 * time.Second
	DefaultStartGrace  = 2 * time.Minute // model loading is slow
	DefaultConcurrency = 16
	MaxConcurrency     = 256 // when many deployments time out (see Prober.Round)
)

type Result struct {
	Success    bool // HTTP 200 within the timeout
	StatusCode int  // 0 when no answer came
	Duration   time.Duration
	Time       time.Time // when the probe started
	Err        error     // transport errors and timeouts, not a non-200 answer
}

// Reason says in a few words why r failed; "" for a success.
func (r Result) Reason() string {
	switch {
	case r.Success:
		return ""
	case r.Err != nil:
		return r.Err.Error()
	}
	return "HTTP " + strconv.Itoa(r.StatusCode)
}

var ErrTimeout = errors.New("no answer within the timeout")

// client never reuses a connection (a stopped JVM must not be judged by an
// old socket) and follows no redirect or proxy; small buffers halve allocations.
var client = &http.Client{
	Transport: &http.Transport{
		Proxy:              nil,
		DisableKeepAlives:  true,
		DisableCompression: true,
		ReadBufferSize:     512,
		WriteBufferSize:    256,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func Ping(ctx context.Context, port int, path string, timeout time.Duration) Result {
	begin := time.Now()
	r := Result{Time: begin}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.Err = fmt.Errorf("probing %s: %w", url, err)
		r.Duration = time.Since(begin)
		return r
	}
	resp, err := client.Do(req)
	r.Duration = time.Since(begin)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%s)", ErrTimeout, timeout)
		}
		r.Err = fmt.Errorf("GET %s: %w", path, err)
		return r
	}
	resp.Body.Close()
	r.StatusCode = resp.StatusCode
	r.Success = resp.StatusCode == http.StatusOK
	return r
}

// PingAll returns results in the ports' order; a port that does not answer
// costs its timeout, not more.
func PingAll(ctx context.Context, ports []int, path string, timeout time.Duration, concurrency int) []Result {
	results := make([]Result, len(ports))
	forEach(len(ports), concurrency, concurrency, 0, func(i int) {
		results[i] = Ping(ctx, ports[i], path, timeout)
	})
	return results
}

// forEach calls do for 0..n-1 on concurrency workers, and adds one (up to
// most) whenever item i waits past (i+1)/n of within: slow items still all
// start within it, fast ones cost no more goroutines than concurrency.
func forEach(n, concurrency, most int, within time.Duration, do func(i int)) {
	items := make(chan int)
	var wg sync.WaitGroup
	workers, most := 0, min(most, n)
	addWorker := func() {
		workers++
		wg.Go(func() {
			for i := range items {
				do(i)
			}
		})
	}
	for range min(max(concurrency, 1), n) {
		addWorker()
	}
	begin := time.Now()
	late := time.NewTimer(time.Hour)
	defer late.Stop()
	for i := range n {
		if workers < most {
			late.Reset(time.Until(begin.Add(within * time.Duration(i+1) / time.Duration(n))))
			select {
			case items <- i:
				continue
			case <-late.C:
				addWorker()
			}
		}
		items <- i
	}
	close(items)
	wg.Wait()
}
