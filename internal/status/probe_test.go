package status_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/status"
	"github.com/steam-overseer/steam-overseer/testkit"
)

func TestAddProbes(t *testing.T) {
	h := testkit.NewHome(t)
	const timeout = 500 * time.Millisecond
	serving, _ := h.Run(testkit.Spec{Name: "serving", LogicalName: "serving"})
	slow, _ := h.Run(testkit.Spec{Name: "slow", LogicalName: "slow",
		Behaviour: testkit.Behaviour{PingDelay: 100 * time.Millisecond}})
	stopped, stoppedProc := h.Run(testkit.Spec{Name: "stopped", LogicalName: "stopped"})
	testkit.Freeze(t, stoppedProc)
	// A servlet that failed to deploy: the JVM lives and answers 503.
	broken := h.Add(testkit.Spec{Name: "broken", LogicalName: "broken",
		Behaviour: testkit.Behaviour{Mode: "unavailable"}})
	cmd := h.Command(h.Java, broken)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Reap(t, cmd)
	if err := h.SetPID(broken.ID, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the broken scorer to listen", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.FormatInt(broken.Port, 10))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	dead, deadProc := h.Run(testkit.Spec{Name: "dead", LogicalName: "dead"})
	testkit.Kill(t, deadProc)

	rows, now := readRows(t, h)
	status.AddProbes(context.Background(), rows, probe.DefaultPath, timeout)
	lines, js := render(t, rows, now)
	var objects []struct {
		ID     int64
		Status string
		Probe  *struct {
			Success    bool
			StatusCode int     `json:"status_code"`
			Duration   float64 `json:"duration_seconds"`
			Error      string
		}
	}
	if err := json.Unmarshal(js, &objects); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, js)
	}
	if len(objects) != 5 {
		t.Fatalf("%d JSON objects, want 5 rows", len(objects))
	}

	for i, tc := range []struct {
		id         int64
		wantStatus string
		probed     bool
		wantCode   int
		wantNote   string // in the table's NOTE column and the JSON probe's error
	}{
		{id: serving.ID, wantStatus: "running", probed: true, wantCode: 200},
		{id: slow.ID, wantStatus: "running", probed: true, wantCode: 200},
		{id: stopped.ID, wantStatus: status.StatusUnresponsive, probed: true, wantNote: "no answer within the timeout (500ms)"},
		{id: broken.ID, wantStatus: status.StatusUnresponsive, probed: true, wantCode: 503, wantNote: "HTTP 503"},
		{id: dead.ID, wantStatus: "dead"},
	} {
		o, line := objects[i], lines[i+1]
		if o.ID != tc.id || o.Status != tc.wantStatus || (o.Probe != nil) != tc.probed {
			t.Errorf("row %d: id %d, status %s, probe %+v; want id %d, status %s, probed %v",
				i, o.ID, o.Status, o.Probe, tc.id, tc.wantStatus, tc.probed)
			continue
		}
		if f := strings.Fields(line); len(f) < 5 || f[4] != tc.wantStatus {
			t.Errorf("table row %q, want status %s", line, tc.wantStatus)
		}
		if tc.wantNote != "" && !strings.HasSuffix(line, tc.wantNote) {
			t.Errorf("table row %q does not end with the probe failure %q", line, tc.wantNote)
		}
		if o.Probe == nil {
			continue
		}
		if o.Probe.Success != (tc.wantStatus == "running") || o.Probe.StatusCode != tc.wantCode ||
			!strings.HasSuffix(o.Probe.Error, tc.wantNote) || o.Probe.Duration <= 0 {
			t.Errorf("row %d: probe %+v, want status code %d, error ending %q", i, *o.Probe, tc.wantCode, tc.wantNote)
		}
	}
	if o := objects[1].Probe; o != nil && o.Duration < 0.1 {
		t.Errorf("the slow deployment's probe took %gs, less than its 100ms delay", o.Duration)
	}
}
