package demo

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// predictionsPerSecond per deployment: enough that the dashboard's traffic
// row shows something, little enough to cost nothing.
const predictionsPerSecond = 3

var trafficClient = &http.Client{Timeout: 2 * time.Second}

// sendTraffic sends each deployment a few /predict calls a second, GET and
// POST in turn, until stop (which waits) or ctx ends. A deployment down or
// restarting simply loses its calls, as a real client's would.
func (r *run) sendTraffic(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, d := range r.deps {
		url := "http://127.0.0.1:" + strconv.FormatInt(d.Port, 10) + "/predict"
		wg.Go(func() {
			tick := time.NewTicker(time.Second / predictionsPerSecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				predict(ctx, url, i%2 == 0)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

func predict(ctx context.Context, url string, post bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?sepal_len=5.1&sepal_wid=3.5", nil)
	if post {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"sepal_len":5.1,"sepal_wid":3.5}`))
	}
	if err != nil {
		return
	}
	if resp, err := trafficClient.Do(req); err == nil {
		resp.Body.Close()
	}
}
