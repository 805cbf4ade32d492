package status_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/status"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// On real Jetty, status shows predictions per second since the JVM started
// and heap use; a deployment not running shows neither.
func TestAddInside(t *testing.T) {
	h := testkit.NewJettyHome(t)
	d, _ := testkit.RunJetty(t, h, testkit.Spec{Name: "serving", LogicalName: "serving"}, jetty.War{})
	h.Add(testkit.Spec{Name: "stopped", LogicalName: "stopped"})
	const predictions = 12
	begin := time.Now()
	for range predictions {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/predict?x=1", d.Port))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	calling := time.Since(begin).Seconds()
	rows, now := readRows(t, h)
	status.AddProbes(context.Background(), rows, probe.DefaultPath, 5*time.Second)
	status.AddInside(context.Background(), rows, "/proc", 5*time.Second)
	lines, _ := render(t, rows, now)
	for i, r := range rows {
		if r.ID != d.ID {
			if r.PredictionsPerSecond != nil || r.HeapUsedBytes != nil {
				t.Errorf("%s, not running: %v predictions/s, heap %v", r.Name, r.PredictionsPerSecond, r.HeapUsedBytes)
			}
			continue
		}
		// The count over the servlet's uptime, which began after the
		// process and before the first prediction.
		if p := r.PredictionsPerSecond; p == nil || *p**r.UptimeSeconds < predictions || *p*calling > predictions {
			t.Errorf("predictions/s %v, want %d over at most the JVM's uptime %vs and at least %vs",
				p, predictions, *r.UptimeSeconds, calling)
		}
		if r.HeapUsedBytes == nil || *r.HeapUsedBytes <= 0 || *r.HeapUsedBytes > *r.HeapMaxBytes {
			t.Errorf("heap %v of %v", r.HeapUsedBytes, r.HeapMaxBytes)
		}
		if !strings.Contains(lines[i+1], "MiB") {
			t.Errorf("table row %q shows no heap", lines[i+1])
		}
	}
}
