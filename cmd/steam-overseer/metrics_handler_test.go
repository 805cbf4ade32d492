package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/collector"
	"github.com/steam-overseer/steam-overseer/internal/hsperf"
)

// broken publishes a series its Desc does not allow.
type broken struct{ desc *prometheus.Desc }

func (b broken) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }
func (b broken) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("steam_test_broken", "Broken.", nil, nil), prometheus.GaugeValue, 1)
}

// The exposition served one family at a time holds what promhttp's of one
// gather holds, in the format and encoding asked for; a collector whose
// series break their Desc loses its own families only.
func TestInTurnHandler(t *testing.T) {
	t.Parallel()
	captured, err := os.ReadFile("../../internal/hsperf/testdata/jdk17-GarbageFirst.hsperf")
	if err != nil {
		t.Fatal(err)
	}
	counters, err := hsperf.Parse(captured)
	if err != nil {
		t.Fatal(err)
	}
	j, err := counters.JVM()
	if err != nil {
		t.Fatal(err)
	}
	var ds []collector.RunningDeployment
	for i := range 3 {
		ds = append(ds, collector.RunningDeployment{ID: strconv.Itoa(i), Name: "scorer-" + strconv.Itoa(i), JVM: &j})
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "steam_test_requests_total", Help: "Requests."},
		[]string{"code"})
	requests.WithLabelValues("200").Add(3)
	requests.WithLabelValues("500").Inc()
	reg := newInTurn()
	reg.MustRegister(collector.NewJVMCollector(func() []collector.RunningDeployment { return ds }), requests)
	want := scrapeText(t, promhttp.HandlerFor(reg.all, promhttp.HandlerOpts{}), "/metrics", "", "")
	if len(want) < 10 {
		t.Fatalf("promhttp served %d families", len(want))
	}
	reg.MustRegister(broken{prometheus.NewDesc("steam_test_broken", "Broken.", []string{"why"}, nil)})
	handler := reg.Handler(promslog.NewNopLogger())

	for _, tc := range []struct{ name, accept, encoding string }{
		{"text", "", ""},
		{"gzip", "", "gzip, deflate"},
		{"gzip refused", "", "gzip;q=0, identity"},
		{"protobuf", `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scrapeText(t, handler, "/metrics", tc.accept, tc.encoding)
			if _, ok := got["steam_test_broken"]; ok {
				t.Error("the broken collector's family was served")
			}
			for name, text := range want {
				if got[name] != text {
					t.Errorf("%s:\n%s\nwant (promhttp)\n%s", name, got[name], text)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d families, promhttp %d", len(got), len(want))
			}
		})
	}
	const only = "/metrics?name[]=steam_test_requests_total&name[]=steam_deployment_jvm_threads_current"
	got := scrapeText(t, handler, only, "", "")
	if len(got) != 2 || got["steam_test_requests_total"] != want["steam_test_requests_total"] ||
		got["steam_deployment_jvm_threads_current"] != want["steam_deployment_jvm_threads_current"] {
		t.Errorf("%s served %v", only, got)
	}
}

// scrapeText GETs target from h and returns each family in the text format.
func scrapeText(t *testing.T, h http.Handler, target, accept, encoding string) map[string]string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	var body io.Reader = rec.Body
	gzipped := rec.Header().Get("Content-Encoding") == "gzip"
	if wantGzip := strings.HasPrefix(encoding, "gzip") && !strings.Contains(encoding, "q=0"); gzipped != wantGzip {
		t.Fatalf("Content-Encoding %q for Accept-Encoding %q", rec.Header().Get("Content-Encoding"), encoding)
	}
	if gzipped {
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	format := expfmt.ResponseFormat(rec.Header())
	if accept != "" && format.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("Content-Type %q for Accept %q", rec.Header().Get("Content-Type"), accept)
	}
	dec := expfmt.NewDecoder(body, format)
	families := map[string]string{}
	for {
		mf := new(dto.MetricFamily)
		if err := dec.Decode(mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if _, dup := families[mf.GetName()]; dup {
			t.Fatalf("%s served twice", mf.GetName())
		}
		var text strings.Builder
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
		families[mf.GetName()] = text.String()
	}
	return families
}

// batches hands its series over in the batches given, as collector.Collector does.
type batches struct {
	descs []*prometheus.Desc
	of    [][]prometheus.Metric
}

func (b batches) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range b.descs {
		ch <- d
	}
}

func (b batches) Collect(ch chan<- prometheus.Metric) {
	b.CollectInBatches(func(ms []prometheus.Metric) {
		for _, m := range ms {
			ch <- m
		}
	})
}

func (b batches) CollectInBatches(emit func([]prometheus.Metric)) {
	for _, ms := range b.of {
		emit(ms)
	}
}

// A collector's batches are written in turn, each family once: a series of
// a family already written is refused rather than served twice.
func TestInTurnHandlerBatches(t *testing.T) {
	t.Parallel()
	a := prometheus.NewDesc("steam_test_a", "A.", []string{"n"}, nil)
	b := prometheus.NewDesc("steam_test_b", "B.", nil, nil)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
		return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	reg := newInTurn()
	reg.MustRegister(batches{descs: []*prometheus.Desc{a, b}, of: [][]prometheus.Metric{
		{gauge(a, 1, "1"), gauge(a, 2, "2")},
		{gauge(b, 3)},
		{gauge(a, 4, "late")},
	}})
	got := scrapeText(t, reg.Handler(promslog.NewNopLogger()), "/metrics", "", "")
	want := map[string]string{
		"steam_test_a": "# HELP steam_test_a A.\n# TYPE steam_test_a gauge\nsteam_test_a{n=\"1\"} 1\nsteam_test_a{n=\"2\"} 2\n",
		"steam_test_b": "# HELP steam_test_b B.\n# TYPE steam_test_b gauge\nsteam_test_b 3\n",
	}
	if len(got) != len(want) || got["steam_test_a"] != want["steam_test_a"] || got["steam_test_b"] != want["steam_test_b"] {
		t.Errorf("served %q, want %q", got, want)
	}
}
