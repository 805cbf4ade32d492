package webhook

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzDecode feeds arbitrary bodies to the decoder and to the handler: no
// panic, a body the decoder rejects is answered 400 with nothing queued, and
// an accepted one is answered 200 with every outcome agreeing with the
// alert it was given for (or 413, nothing queued, when it names more
// deployments than the registry holds plus the margin).
func FuzzDecode(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "webhook", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"version":"4","alerts":[]}`, `{"version":"4","alerts":[null]}`,
		`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"SteamDeploymentDown","deployment_id":"+7"}}]}`,
		`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"SteamDeploymentDown","deployment_id":"7","instance":"steam1.example.internal:9732"}}]}`,
	} {
		f.Add([]byte(s))
	}

	cfg := Config{
		AlertNames: []string{"SteamDeploymentDown", "SteamDeploymentNotReady"},
		Match:      map[string]string{"instance": "steam1.example.internal:9732"},
		Known:      registry(nil, fixtureIDs...),
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, decodeErr := decode(body)

		q := &recordingQueue{}
		h, err := New(cfg, q, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)

		if decodeErr != nil {
			if rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("decode error %v, but status %d", decodeErr, rec.Code)
			}
			if ids := q.enqueued(); len(ids) != 0 {
				t.Fatalf("rejected body, but enqueued %v", ids)
			}
			return
		}
		distinct := map[int64]bool{}
		for _, a := range msg.Alerts {
			if outcome, id := h.classify(a); outcome == Queued {
				distinct[id] = true
			}
		}
		if len(distinct) > len(fixtureIDs)+DefaultMargin {
			if rec.Code != http.StatusRequestEntityTooLarge || len(q.enqueued()) != 0 {
				t.Fatalf("%d deployments named: answered %d, enqueued %v", len(distinct), rec.Code, q.enqueued())
			}
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("decoded body answered %d: %s", rec.Code, rec.Body)
		}
		var reply Summary
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("decoding reply: %v", err)
		}
		if len(reply.Alerts) != len(msg.Alerts) {
			t.Fatalf("reply has %d alerts, payload %d", len(reply.Alerts), len(msg.Alerts))
		}

		var wantIDs []int64
		for i, a := range msg.Alerts {
			outcome, id := h.classify(a)
			if outcome == Queued && !slices.Contains(fixtureIDs, id) {
				outcome = UnknownDeployment
			}
			if reply.Alerts[i].Outcome != outcome {
				t.Fatalf("alert %d: reply says %s, classify %s", i, reply.Alerts[i].Outcome, outcome)
			}
			if a.Status == statusResolved && outcome != IgnoredResolved {
				t.Fatalf("alert %d: resolved alert got %s", i, outcome)
			}
			if outcome != Queued {
				continue
			}
			raw := a.Labels["deployment_id"]
			switch {
			case a.Status != statusFiring:
				t.Fatalf("alert %d: queued with status %q", i, a.Status)
			case !slices.Contains(cfg.AlertNames, a.Labels["alertname"]):
				t.Fatalf("alert %d: queued with alertname %q", i, a.Labels["alertname"])
			case a.Labels["instance"] != cfg.Match["instance"]:
				t.Fatalf("alert %d: queued with instance %q", i, a.Labels["instance"])
			case id <= 0 || strconv.FormatInt(id, 10) != raw:
				t.Fatalf("alert %d: queued id %d from label %q", i, id, raw)
			}
			wantIDs = append(wantIDs, id)
		}
		if ids := q.enqueued(); !slices.Equal(ids, wantIDs) || reply.Queued != len(wantIDs) {
			t.Fatalf("enqueued %v, reply says %d queued, want %v", ids, reply.Queued, wantIDs)
		}
	})
}
