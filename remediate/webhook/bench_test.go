package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

type countingQueue struct{ n atomic.Int64 }

func (q *countingQueue) Enqueue(int64, string) { q.n.Add(1) }

// discardWriter keeps the benchmark's own cost out of the numbers.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// payload returns a notification of n firing alerts shaped like the ones
// Alertmanager sends, for deployments 1..n.
func payload(tb testing.TB, n int) []byte {
	tb.Helper()
	type alert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	alerts := make([]alert, n)
	for i := range alerts {
		id := i + 1
		name := fmt.Sprintf("model-%d", id)
		alerts[i] = alert{
			Status: "firing",
			Labels: map[string]string{
				"alertname": "SteamDeploymentDown", "deployment": name, "deployment_id": fmt.Sprint(id),
				"instance": "steam1.example.internal:9732", "job": "steam", "severity": "critical",
			},
			Annotations: map[string]string{
				"summary":     fmt.Sprintf("Steam deployment %s is down.", name),
				"description": fmt.Sprintf("Deployment %s (id %d) on steam1.example.internal:9732 has been down for more than 1 minute.", name, id),
			},
			StartsAt:     "2026-11-23T09:14:05.123Z",
			EndsAt:       "0001-01-01T00:00:00Z",
			GeneratorURL: "http://prometheus.example.internal:9090/graph?g0.expr=steam_deployment_up+%3D%3D+0&g0.tab=1",
			Fingerprint:  fmt.Sprintf("%016x", id),
		}
	}
	b, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": `{}/{alertname="SteamDeploymentDown"}:{alertname="SteamDeploymentDown"}`,
		"truncatedAlerts": 0, "status": "firing", "receiver": "steam-remediator",
		"groupLabels":       map[string]string{"alertname": "SteamDeploymentDown"},
		"commonLabels":      map[string]string{"alertname": "SteamDeploymentDown", "job": "steam", "severity": "critical"},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager.example.internal:9093",
		"alerts":            alerts,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkAccept1000 is the time to accept one notification of 1000
// alerts: read, decode, decide, enqueue and reply; the handler alone, and
// through a real HTTP round trip on loopback.
func BenchmarkAccept1000(b *testing.B) {
	const n = 1000
	body := payload(b, n)
	if len(body) > DefaultMaxBody {
		b.Fatalf("payload of %d bytes exceeds the default limit", len(body))
	}
	newHandler := func(b *testing.B) (*Handler, *countingQueue) {
		q := &countingQueue{}
		// Every deployment exists: the cost measured is that of queueing.
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = int64(i + 1)
		}
		h, err := New(Config{Known: registry(nil, ids...)}, q, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		return h, q
	}

	b.Run("handler", func(b *testing.B) {
		h, q := newHandler(b)
		w := &discardWriter{header: http.Header{}}
		r := httptest.NewRequest(http.MethodPost, "/webhook", nil)
		r.Header.Set("Content-Type", "application/json")
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			h.ServeHTTP(w, r)
		}
		if q.n.Load() < n {
			b.Fatalf("enqueued %d, want at least %d", q.n.Load(), n)
		}
	})

	b.Run("http", func(b *testing.B) {
		h, q := newHandler(b)
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := srv.Client()
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		if q.n.Load() < n {
			b.Fatalf("enqueued %d, want at least %d", q.n.Load(), n)
		}
	})
}
