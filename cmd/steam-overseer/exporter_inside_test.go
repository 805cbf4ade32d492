package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// jvmSample is what one scrape says of one deployment's JVM.
type jvmSample struct {
	heapUsed, oldUsed, heapCommitted float64
	collections, gcSeconds           float64
	probeTime                        float64 // when the round that read it ran
	predictions                      float64
}

// scrapeJVM scrapes url and returns deployment id's figures; ok is false
// until the exporter has read its JVM counters.
func scrapeJVM(t *testing.T, url, id string) (s jvmSample, ok bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, want map[string]string, get func(*dto.Metric) float64) (sum float64, found bool) {
		for _, m := range families[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["deployment_id"] != id {
				continue
			}
			match := true
			for k, v := range want {
				match = match && labels[k] == v
			}
			if match {
				sum, found = sum+get(m), true
			}
		}
		return sum, found
	}
	gauge := func(m *dto.Metric) float64 { return m.GetGauge().GetValue() }
	s.heapUsed, ok = value("steam_deployment_jvm_memory_used_bytes", map[string]string{"area": "heap"}, gauge)
	s.heapCommitted, _ = value("steam_deployment_jvm_memory_committed_bytes", map[string]string{"area": "heap"}, gauge)
	s.oldUsed, _ = value("steam_deployment_jvm_memory_pool_used_bytes", map[string]string{"pool": "old"}, gauge)
	s.collections, _ = value("steam_deployment_jvm_gc_collection_seconds", nil,
		func(m *dto.Metric) float64 { return float64(m.GetSummary().GetSampleCount()) })
	s.gcSeconds, _ = value("steam_deployment_jvm_gc_collection_seconds", nil,
		func(m *dto.Metric) float64 { return m.GetSummary().GetSampleSum() })
	s.probeTime, _ = value("steam_deployment_probe_timestamp_seconds", nil, gauge)
	s.predictions, _ = value("steam_deployment_prediction_duration_seconds", nil,
		func(m *dto.Metric) float64 { return float64(m.GetSummary().GetSampleCount()) })
	return s, ok
}

// jstatGC returns `jstat -gc pid`'s columns by name, sizes in KiB.
func jstatGC(t *testing.T, pid int) map[string]float64 {
	t.Helper()
	out, err := exec.Command(testkit.RequireTool(t, "jstat"), "-gc", strconv.Itoa(pid)).Output()
	if err != nil {
		t.Fatalf("jstat -gc %d: %v", pid, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	names, values := strings.Fields(lines[0]), strings.Fields(lines[len(lines)-1])
	cols := map[string]float64{}
	for i, n := range names {
		if v, err := strconv.ParseFloat(values[i], 64); err == nil && i < len(values) {
			cols[n] = v
		}
	}
	return cols
}

// The exporter's JVM figures of a real Jetty agree with jstat -gc of the
// same process, and its prediction count with the /predict calls made.
func TestExporterSeesInsideRealJetty(t *testing.T) {
	t.Parallel()
	h := testkit.NewJettyHome(t)
	d, p := testkit.RunJetty(t, h, testkit.Spec{Name: "inside"}, jetty.War{})
	id := strconv.FormatInt(d.ID, 10)
	const predictions = 23
	for i := range predictions {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/predict?x=%d", d.Port, i))
		} else {
			resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/predict", d.Port), "application/json",
				strings.NewReader(`{"x":1}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := startSubprocess(t, testkit.JettyEnv(t, h), "exporter", "--steam.home="+h.Home.Dir,
		"--web.listen-address="+addr, "--probe.interval=1s")
	url := "http://" + addr + "/metrics"
	testkit.Eventually(t, 30*time.Second, "the deployment's JVM figures", func() bool {
		if _, err := http.Get(url); err != nil {
			return false
		}
		_, ok := scrapeJVM(t, url, id)
		return ok
	})
	// nextRound waits for a round after the one of prev.
	nextRound := func(prev jvmSample) jvmSample {
		var s jvmSample
		testkit.Eventually(t, 10*time.Second, "the next round", func() bool {
			s, _ = scrapeJVM(t, url, id)
			return s.probeTime > prev.probeTime
		})
		return s
	}
	before := nextRound(jvmSample{})
	if before.predictions != predictions {
		t.Errorf("steam_deployment_prediction_duration_seconds_count %v, want the %d /predict calls made\n%s",
			before.predictions, predictions, e.stderr.String())
	}
	cols := jstatGC(t, p.Pid)
	after := nextRound(before)

	const kib = 1024
	for _, c := range []struct {
		name          string
		before, after float64
		jstat         float64
	}{
		{"heap used", before.heapUsed, after.heapUsed, (cols["S0U"] + cols["S1U"] + cols["EU"] + cols["OU"]) * kib},
		{"heap committed", before.heapCommitted, after.heapCommitted, (cols["S0C"] + cols["S1C"] + cols["EC"] + cols["OC"]) * kib},
		{"old generation used", before.oldUsed, after.oldUsed, cols["OU"] * kib},
		{"collections", before.collections, after.collections, cols["YGC"] + cols["FGC"] + cols["CGC"]},
		{"GC seconds", before.gcSeconds, after.gcSeconds, cols["GCT"]},
	} {
		// The JVM runs on between the reads; jstat's own attach may even
		// make it collect once. Its figure lies between the exporter's two,
		// give or take 1% (and jstat's 3 decimals of seconds).
		lo, hi := min(c.before, c.after), max(c.before, c.after)
		slack := 0.01*hi + 0.0011
		t.Logf("%s: exporter %.6g .. %.6g, jstat %.6g", c.name, c.before, c.after, c.jstat)
		if c.jstat < lo-slack || c.jstat > hi+slack {
			t.Errorf("%s: jstat -gc says %v, the exporter %v before and %v after", c.name, c.jstat, c.before, c.after)
		}
	}
	if before.collections == 0 && after.collections == 0 {
		t.Log("no collection yet: the GC comparison proves only zero")
	}
}
