package remediate

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// BenchmarkRestartOverhead measures the remediator's own share of a
// restart: from the notification (Enqueue, what the webhook handler calls)
// to the deployment answering /ping, as steam_remediator_restart_duration_seconds
// records it, minus the time the fake service itself needs from exec to
// answering /ping, timed by starting it directly and polling every 200 µs.
// It reports the medians: engine-ms, direct-ms and overhead-ms (their
// difference). Run it with a fixed count, e.g. -benchtime=30x.
func BenchmarkRestartOverhead(b *testing.B) {
	h := testkit.NewHome(b)
	// Every iteration kills the deployment: neither the watch window nor
	// the flapping limit may count that against it.
	e := newEngine(b, h, func(c *Config) {
		c.WatchAfterReady = time.Millisecond
		c.Policy.MaxStarts = 1 << 30
	})
	d, p := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	testkit.Kill(b, p)
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	var engine, direct []time.Duration
	b.ResetTimer()
	for range b.N {
		count, sum := histogram(b, e)
		e.Enqueue(d.ID, AlertDown)
		testkit.Eventually(b, 10*time.Second, "the restart", func() bool {
			n, _ := histogram(b, e)
			return n > count
		})
		_, after := histogram(b, e)
		engine = append(engine, time.Duration((after-sum)*float64(time.Second)))
		e.idle(b)
		testkit.Eventually(b, 5*time.Second, "the watch window to close", func() bool {
			pol, err := e.state.RestartPolicy(context.Background(), d.ID)
			return err == nil && pol.ProbationPID == 0
		})
		h.KillJavas()

		begin := time.Now()
		cmd := h.Command(h.Java, d)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/ping", d.Port)
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
		direct = append(direct, time.Since(begin))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	b.StopTimer()
	me, md := median(engine), median(direct)
	b.ReportMetric(ms(me), "engine-ms")
	b.ReportMetric(ms(md), "direct-ms")
	b.ReportMetric(ms(me-md), "overhead-ms")
}

func histogram(tb testing.TB, e *testEngine) (count uint64, sum float64) {
	var m dto.Metric
	if err := e.metrics.restartDuration.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
