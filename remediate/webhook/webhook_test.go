package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recordingQueue is the boundary to the remediation engine: it records
// every deployment handed over, and the alertname that asked for it.
type recordingQueue struct {
	mu         sync.Mutex
	ids        []int64
	alertnames []string
}

func (q *recordingQueue) Enqueue(id int64, alertname string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	q.alertnames = append(q.alertnames, alertname)
}

func (q *recordingQueue) enqueued() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.ids)
}

// registry is a Known that holds the given deployment ids, or fails with
// err.
func registry(err error, ids ...int64) func(context.Context) (map[int64]bool, error) {
	return func(context.Context) (map[int64]bool, error) {
		if err != nil {
			return nil, err
		}
		known := make(map[int64]bool, len(ids))
		for _, id := range ids {
			known[id] = true
		}
		return known, nil
	}
}

// fixtureIDs are the deployments the fixtures name and the test registry
// holds, but for 4242, which Steam deleted.
var fixtureIDs = []int64{7, 8, 9, 12}

// withRegistry gives cfg the test registry unless it has its own.
func withRegistry(cfg Config) Config {
	if cfg.Known == nil {
		cfg.Known = registry(nil, fixtureIDs...)
	}
	return cfg
}

type testServer struct {
	*httptest.Server
	handler *Handler
	queue   *recordingQueue
	reg     *prometheus.Registry
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	s := &testServer{queue: &recordingQueue{}, reg: prometheus.NewRegistry()}
	h, err := New(withRegistry(cfg), s.queue, s.reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.handler = h
	s.Server = httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhook", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (s *testServer) do(t *testing.T, method string, body io.Reader, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	// As Alertmanager does, unless the test says otherwise.
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, s.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

func (s *testServer) requestsTotal(code string) float64 {
	return testutil.ToFloat64(s.handler.requests.WithLabelValues(code))
}

func TestAlerts(t *testing.T) {
	t.Parallel()
	const steam1 = "steam1.example.internal:9732"
	for _, tc := range []struct {
		name           string
		fixture        string
		cfg            Config
		want           []AlertSummary
		wantIDs        []int64
		wantAlertnames []string // as handed to the queue, when checked
	}{
		{
			name:    "firing",
			fixture: "firing.json",
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued}},
			wantIDs: []int64{7},
		},
		{
			name:    "resolved",
			fixture: "resolved.json",
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "resolved", IgnoredResolved}},
		},
		{
			// commonLabels hold no deployment_id: each alert's own labels count.
			name:    "several alerts, shrunken commonLabels",
			fixture: "several.json",
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued},
				{"5e0d81b2a94c7f13", "SteamDeploymentDown", "8", "firing", Queued},
				{"9b47e3c0d2165fa8", "SteamDeploymentDown", "12", "firing", Queued},
			},
			wantIDs: []int64{7, 8, 12},
		},
		{
			// The group is firing, but only one of its alerts is.
			name:    "firing and resolved in one group",
			fixture: "mixed.json",
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "resolved", IgnoredResolved},
				{"5e0d81b2a94c7f13", "SteamDeploymentDown", "8", "firing", Queued},
			},
			wantIDs: []int64{8},
		},
		{
			name:    "unknown fields",
			fixture: "unknown-fields.json",
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued}},
			wantIDs: []int64{7},
		},
		{
			name:    "missing deployment_id",
			fixture: "missing-id.json",
			want:    []AlertSummary{{"3f6a0c9d81e2b745", "SteamDeploymentDown", "", "firing", IgnoredNoDeploymentID}},
		},
		{
			name:    "bad deployment_id",
			fixture: "bad-id.json",
			want: []AlertSummary{
				{"a1c0f3e5d7b90214", "SteamDeploymentDown", "churn-gbm", "firing", IgnoredBadDeploymentID},
				{"a1c0f3e5d7b90215", "SteamDeploymentDown", "0", "firing", IgnoredBadDeploymentID},
				{"a1c0f3e5d7b90216", "SteamDeploymentDown", "-3", "firing", IgnoredBadDeploymentID},
				{"a1c0f3e5d7b90217", "SteamDeploymentDown", "07", "firing", IgnoredBadDeploymentID},
				{"a1c0f3e5d7b90218", "SteamDeploymentDown", "9223372036854775808", "firing", IgnoredBadDeploymentID},
				{"a1c0f3e5d7b90219", "SteamDeploymentDown", "9", "firing", Queued},
			},
			wantIDs: []int64{9},
		},
		{
			// Sent by the exporter's exit watch straight to Alertmanager.
			name:    "exit watch's alert",
			fixture: "exited.json",
			want:    []AlertSummary{{"5e1c7a09d3b24f86", "SteamDeploymentExited", "7", "firing", Queued}},
			wantIDs: []int64{7},
		},
		{
			name:    "other alertname",
			fixture: "other-alertname.json",
			want: []AlertSummary{
				{"6d2e9a41f08c3b57", "SteamDeploymentNotReady", "7", "firing", IgnoredAlertname},
				{"0f8b2c7e4a19d635", "SteamDeploymentHighLatency", "7", "firing", IgnoredAlertname},
			},
		},
		{
			name:    "other alertname configured",
			fixture: "other-alertname.json",
			cfg:     Config{AlertNames: []string{"SteamDeploymentDown", "SteamDeploymentNotReady"}},
			want: []AlertSummary{
				{"6d2e9a41f08c3b57", "SteamDeploymentNotReady", "7", "firing", Queued},
				{"0f8b2c7e4a19d635", "SteamDeploymentHighLatency", "7", "firing", IgnoredAlertname},
			},
			wantIDs: []int64{7},
		},
		{
			name:    "configured alertname replaces the default",
			fixture: "firing.json",
			cfg:     Config{AlertNames: []string{"SteamDeploymentNotReady"}},
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", IgnoredAlertname}},
		},
		{
			name:    "no match filter",
			fixture: "match-instance.json",
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued},
				{"47b1d09e3c2a8f60", "SteamDeploymentDown", "7", "firing", Queued},
				{"e85c3a2f1d904b76", "SteamDeploymentDown", "9", "firing", Queued},
			},
			wantIDs: []int64{7, 7, 9},
		},
		{
			// Deployment 7 of another Steam host is not ours.
			name:    "match instance",
			fixture: "match-instance.json",
			cfg:     Config{Match: map[string]string{"instance": steam1}},
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued},
				{"47b1d09e3c2a8f60", "SteamDeploymentDown", "7", "firing", IgnoredUnmatched},
				{"e85c3a2f1d904b76", "SteamDeploymentDown", "9", "firing", IgnoredUnmatched},
			},
			wantIDs: []int64{7},
		},
		{
			name:    "match empty value is a missing label",
			fixture: "match-instance.json",
			cfg:     Config{Match: map[string]string{"instance": ""}},
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", IgnoredUnmatched},
				{"47b1d09e3c2a8f60", "SteamDeploymentDown", "7", "firing", IgnoredUnmatched},
				{"e85c3a2f1d904b76", "SteamDeploymentDown", "9", "firing", Queued},
			},
			wantIDs: []int64{9},
		},
		{
			name:    "match every pair",
			fixture: "firing.json",
			cfg:     Config{Match: map[string]string{"instance": steam1, "job": "steam-canary"}},
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", IgnoredUnmatched}},
		},
		{
			name:    "match several pairs",
			fixture: "firing.json",
			cfg:     Config{Match: map[string]string{"instance": steam1, "job": "steam"}},
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued}},
			wantIDs: []int64{7},
		},
		{
			// Deployment 4242 is not in Steam's registry: counted, not queued.
			name:    "unknown deployment",
			fixture: "unknown-id.json",
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued},
				{"71d3e0a9c4b25f86", "SteamDeploymentDown", "4242", "firing", UnknownDeployment},
				{"08e4b6d2f9a1c357", "SteamDeploymentUnresponsive", "8", "firing", Queued},
			},
			wantIDs:        []int64{7, 8},
			wantAlertnames: []string{"SteamDeploymentDown", "SteamDeploymentUnresponsive"},
		},
		{
			name:    "unresponsive not configured",
			fixture: "unknown-id.json",
			cfg:     Config{AlertNames: []string{"SteamDeploymentDown"}},
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", Queued},
				{"71d3e0a9c4b25f86", "SteamDeploymentDown", "4242", "firing", UnknownDeployment},
				{"08e4b6d2f9a1c357", "SteamDeploymentUnresponsive", "8", "firing", IgnoredAlertname},
			},
			wantIDs:        []int64{7},
			wantAlertnames: []string{"SteamDeploymentDown"},
		},
		{
			name:    "empty registry",
			fixture: "several.json",
			cfg:     Config{Known: registry(nil)},
			want: []AlertSummary{
				{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "firing", UnknownDeployment},
				{"5e0d81b2a94c7f13", "SteamDeploymentDown", "8", "firing", UnknownDeployment},
				{"9b47e3c0d2165fa8", "SteamDeploymentDown", "12", "firing", UnknownDeployment},
			},
		},
		{
			// Unknown, but ignored for its alertname first.
			name:    "judged before the registry",
			fixture: "other-alertname.json",
			cfg:     Config{Known: registry(nil)},
			want: []AlertSummary{
				{"6d2e9a41f08c3b57", "SteamDeploymentNotReady", "7", "firing", IgnoredAlertname},
				{"0f8b2c7e4a19d635", "SteamDeploymentHighLatency", "7", "firing", IgnoredAlertname},
			},
		},
		{
			// The alertname is judged before the match filter and the id.
			name:    "resolved beats everything",
			fixture: "resolved.json",
			cfg:     Config{AlertNames: []string{"Other"}, Match: map[string]string{"job": "other"}},
			want:    []AlertSummary{{"c2a9f1e07b3d4e58", "SteamDeploymentDown", "7", "resolved", IgnoredResolved}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			resp := s.do(t, http.MethodPost, bytes.NewReader(fixture(t, tc.fixture)), http.Header{"Content-Type": {"application/json"}})
			if resp.code != http.StatusOK {
				t.Fatalf("status %d, want 200; body: %s", resp.code, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var got Summary
			if err := json.Unmarshal(resp.body, &got); err != nil {
				t.Fatalf("decoding reply %s: %v", resp.body, err)
			}
			want := Summary{Alerts: tc.want, Queued: len(tc.wantIDs)}
			if !summaryEqual(got, want) {
				t.Errorf("reply\n got %+v\nwant %+v", got, want)
			}
			if ids := s.queue.enqueued(); !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("enqueued %v, want %v", ids, tc.wantIDs)
			}
			if tc.wantAlertnames != nil && !slices.Equal(s.queue.alertnames, tc.wantAlertnames) {
				t.Errorf("enqueued with alertnames %v, want %v", s.queue.alertnames, tc.wantAlertnames)
			}
			wantOutcomes := map[Outcome]float64{}
			for _, a := range tc.want {
				wantOutcomes[a.Outcome]++
			}
			for _, o := range outcomes {
				if got := testutil.ToFloat64(s.handler.alerts[o]); got != wantOutcomes[o] {
					t.Errorf("steam_remediator_alerts_total{outcome=%q} = %v, want %v", o, got, wantOutcomes[o])
				}
			}
			if got := s.requestsTotal("200"); got != 1 {
				t.Errorf(`steam_remediator_webhook_requests_total{code="200"} = %v, want 1`, got)
			}
		})
	}
}

func summaryEqual(a, b Summary) bool {
	return a.Queued == b.Queued && slices.Equal(a.Alerts, b.Alerts)
}

func TestRejected(t *testing.T) {
	t.Parallel()
	firing := fixture(t, "firing.json")
	const token = "s3cret-t0ken"
	withToken := Config{Token: NewToken([]byte(token))}
	// 200 alerts, each for another deployment that Steam does not have.
	var many bytes.Buffer
	many.WriteString(`{"version":"4","alerts":[`)
	for i := range 200 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `{"status":"firing","labels":{"alertname":"SteamDeploymentDown","deployment_id":"%d"}}`, 100000+i)
	}
	many.WriteString(`]}`)
	locked := Config{Known: registry(errors.New("opening Steam database: database is locked"))}
	// A valid notification that carries one more alert, not well-formed:
	// the first alert must not be queued either.
	var partly map[string]any
	if err := json.Unmarshal(firing, &partly); err != nil {
		t.Fatal(err)
	}
	partly["alerts"] = append(partly["alerts"].([]any), map[string]any{"status": "firing", "labels": map[string]any{"deployment_id": 8}})
	partlyBad, err := json.Marshal(partly)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		cfg        Config
		shutdown   bool
		method     string
		body       []byte
		chunked    bool // send without Content-Length
		header     http.Header
		wantCode   int
		wantError  string
		wantHeader http.Header
		// wantRegistryErrors is steam_remediator_webhook_registry_errors_total after.
		wantRegistryErrors float64
	}{
		{name: "malformed JSON", body: []byte(`{"version": "4", "alerts": [`), wantCode: 400, wantError: "decoding payload at byte 28: unexpected end of JSON input"},
		{name: "not JSON", body: []byte(`hello`), wantCode: 400, wantError: "body is not a JSON object"},
		{name: "empty body", body: nil, wantCode: 400, wantError: "empty body"},
		{name: "array", body: []byte(`[` + string(firing) + `]`), wantCode: 400, wantError: "body is not a JSON object"},
		{name: "null", body: []byte(`null`), wantCode: 400, wantError: "body is not a JSON object"},
		{name: "trailing data", body: append(slices.Clone(firing), `{}`...), wantCode: 400, wantError: "invalid character '{' after top-level value"},
		{name: "version 3", body: bytes.Replace(firing, []byte(`"version": "4"`), []byte(`"version": "3"`), 1), wantCode: 400, wantError: `unsupported payload version "3", want "4"`},
		{name: "version as number", body: bytes.Replace(firing, []byte(`"version": "4"`), []byte(`"version": 4`), 1), wantCode: 400, wantError: "decoding payload"},
		{name: "no version", body: []byte(`{"alerts": []}`), wantCode: 400, wantError: `missing "version"`},
		{name: "no alerts", body: []byte(`{"version": "4", "status": "firing"}`), wantCode: 400, wantError: `missing "alerts" array`},
		{name: "null alerts", body: []byte(`{"version": "4", "alerts": null}`), wantCode: 400, wantError: `missing "alerts" array`},
		{name: "alerts object", body: []byte(`{"version": "4", "alerts": {}}`), wantCode: 400, wantError: "decoding payload"},
		{name: "null alert", body: []byte(`{"version": "4", "alerts": [null]}`), wantCode: 400, wantError: "alert 0 is null"},
		{name: "unknown alert status", body: bytes.Replace(firing, []byte(`"status": "firing",`+"\n      "), []byte(`"status": "pending",`+"\n      "), 1), wantCode: 400, wantError: `alert 0: unknown status "pending"`},
		{name: "one bad alert among good", body: partlyBad, wantCode: 400, wantError: "decoding payload"},
		{name: "over limit by Content-Length", cfg: Config{MaxBody: int64(len(firing)) - 1}, body: firing, wantCode: 413, wantError: fmt.Sprintf("body of %d bytes exceeds the limit", len(firing))},
		{name: "over limit chunked", cfg: Config{MaxBody: int64(len(firing)) - 1}, body: firing, chunked: true, wantCode: 413, wantError: "body exceeds the limit"},
		{name: "over default limit", body: bytes.Repeat([]byte(" "), DefaultMaxBody+1), wantCode: 413, wantError: "exceeds the limit"},
		{name: "GET", method: http.MethodGet, wantCode: 405, wantError: "method GET not allowed", wantHeader: http.Header{"Allow": {"POST"}}},
		{name: "PUT", method: http.MethodPut, body: firing, wantCode: 405, wantError: "method PUT not allowed", wantHeader: http.Header{"Allow": {"POST"}}},
		{name: "no token", cfg: withToken, body: firing, wantCode: 401, wantError: "bearer token", wantHeader: http.Header{"Www-Authenticate": {`Bearer realm="steam-overseer"`}}},
		{name: "wrong token", cfg: withToken, body: firing, header: http.Header{"Authorization": {"Bearer wrong"}}, wantCode: 401, wantError: "bearer token"},
		{name: "token prefix", cfg: withToken, body: firing, header: http.Header{"Authorization": {"Bearer " + token[:len(token)-1]}}, wantCode: 401},
		{name: "token with suffix", cfg: withToken, body: firing, header: http.Header{"Authorization": {"Bearer " + token + "x"}}, wantCode: 401},
		{name: "token without scheme", cfg: withToken, body: firing, header: http.Header{"Authorization": {token}}, wantCode: 401},
		{name: "basic auth", cfg: withToken, body: firing, header: http.Header{"Authorization": {"Basic czNjcmV0LXQwa2Vu"}}, wantCode: 401},
		{name: "empty bearer", cfg: withToken, body: firing, header: http.Header{"Authorization": {"Bearer "}}, wantCode: 401},
		{name: "text/plain", body: firing, header: http.Header{"Content-Type": {"text/plain"}}, wantCode: 415, wantError: "content type text/plain not accepted, send application/json"},
		{name: "form", body: firing, header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, wantCode: 415, wantError: "send application/json"},
		{name: "multipart", body: firing, header: http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, wantCode: 415, wantError: "send application/json"},
		{name: "no content type", body: firing, header: http.Header{"Content-Type": nil}, wantCode: 415, wantError: "no Content-Type"},
		{name: "JSON look-alike", body: firing, header: http.Header{"Content-Type": {"application/jsonp"}}, wantCode: 415, wantError: "send application/json"},
		{name: "bad content type", body: firing, header: http.Header{"Content-Type": {"application/json; ="}}, wantCode: 415, wantError: "bad Content-Type"},
		{name: "UTF-16", body: firing, header: http.Header{"Content-Type": {"application/json; charset=utf-16"}}, wantCode: 415, wantError: "charset utf-16 not accepted"},
		{name: "token before content type", cfg: withToken, body: firing, header: http.Header{"Content-Type": {"text/plain"}}, wantCode: 401},
		{name: "registry unreadable", cfg: locked, body: firing, wantCode: 503, wantError: "retry later (meanwhile 0 alerts of deployments in the last registry read were queued): opening Steam database: database is locked", wantRegistryErrors: 1},
		{name: "more deployments than Steam has", body: many.Bytes(), wantCode: 413,
			wantError: fmt.Sprintf("names 200 distinct deployments, more than the %d Steam has plus a margin of %d", len(fixtureIDs), DefaultMargin)},
		{name: "over a set margin", cfg: Config{Known: registry(nil, 7), Margin: 1}, body: fixture(t, "several.json"), wantCode: 413, wantError: "names 3 distinct deployments, more than the 1 Steam has plus a margin of 1"},
		{name: "shutting down", shutdown: true, body: firing, wantCode: 503, wantError: "shutting down"},
		{name: "shutting down wins over auth", cfg: withToken, shutdown: true, body: firing, wantCode: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			if tc.shutdown {
				s.handler.Shutdown()
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length from the client
			}
			resp := s.do(t, method, body, tc.header)
			if resp.code != tc.wantCode {
				t.Fatalf("status %d, want %d; body: %s", resp.code, tc.wantCode, resp.body)
			}
			var reply struct{ Error string }
			if err := json.Unmarshal(resp.body, &reply); err != nil {
				t.Fatalf("decoding reply %q: %v", resp.body, err)
			}
			if reply.Error == "" || !strings.Contains(reply.Error, tc.wantError) {
				t.Errorf("error %q, want it to contain %q", reply.Error, tc.wantError)
			}
			for k := range tc.wantHeader {
				if got, want := resp.header.Get(k), tc.wantHeader.Get(k); got != want {
					t.Errorf("header %s: %q, want %q", k, got, want)
				}
			}
			if ids := s.queue.enqueued(); len(ids) != 0 {
				t.Errorf("enqueued %v, want nothing", ids)
			}
			for _, c := range codes {
				code := http.StatusText(c)
				want := 0.0
				if c == tc.wantCode {
					want = 1
				}
				if got := testutil.ToFloat64(s.handler.requests.WithLabelValues(strconv.Itoa(c))); got != want {
					t.Errorf("requests_total{code=%q (%s)} = %v, want %v", strconv.Itoa(c), code, got, want)
				}
			}
			for _, o := range outcomes {
				if got := testutil.ToFloat64(s.handler.alerts[o]); got != 0 {
					t.Errorf("alerts_total{outcome=%q} = %v, want 0", o, got)
				}
			}
			if got := testutil.ToFloat64(s.handler.registryErrors); got != tc.wantRegistryErrors {
				t.Errorf("registry_errors_total = %v, want %v", got, tc.wantRegistryErrors)
			}
		})
	}
}

// TestAccepted are the positive controls of TestRejected: the same server
// set-ups take a good request.
func TestAccepted(t *testing.T) {
	t.Parallel()
	firing := fixture(t, "firing.json")
	const token = "s3cret-t0ken"
	for _, tc := range []struct {
		name   string
		cfg    Config
		body   []byte
		header http.Header
	}{
		{name: "bearer token", cfg: Config{Token: NewToken([]byte(token))}, body: firing, header: http.Header{"Authorization": {"Bearer " + token}}},
		{name: "scheme is case-insensitive", cfg: Config{Token: NewToken([]byte(token))}, body: firing, header: http.Header{"Authorization": {"bearer " + token}}},
		{name: "charset", body: firing, header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}}},
		{name: "media type is case-insensitive", body: firing, header: http.Header{"Content-Type": {"Application/JSON"}}},
		// Nothing to look up: the registry is not read.
		{name: "registry unreadable, only resolved alerts", cfg: Config{Known: registry(errors.New("locked"))}, body: fixture(t, "resolved.json")},
		{name: "exactly at the margin", cfg: Config{Known: registry(nil, 7), Margin: 2}, body: fixture(t, "several.json")},
		{name: "exactly at the limit", cfg: Config{MaxBody: int64(len(firing))}, body: firing},
		{name: "no alerts", body: []byte(`{"version":"4","alerts":[]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			resp := s.do(t, http.MethodPost, bytes.NewReader(tc.body), tc.header)
			if resp.code != http.StatusOK {
				t.Fatalf("status %d, want 200; body: %s", resp.code, resp.body)
			}
			var got Summary
			if err := json.Unmarshal(resp.body, &got); err != nil {
				t.Fatalf("decoding reply %s: %v", resp.body, err)
			}
			if ids := s.queue.enqueued(); len(ids) != got.Queued {
				t.Errorf("enqueued %v, reply says %d queued", ids, got.Queued)
			}
			if got := s.requestsTotal("200"); got != 1 {
				t.Errorf(`requests_total{code="200"} = %v, want 1`, got)
			}
		})
	}
}

func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	const n = 50
	s := newTestServer(t, Config{})
	body := fixture(t, "firing.json")
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := s.Client().Post(s.URL, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("status %d, want 200", c)
		}
	}
	// Coalescing duplicates is the queue's job: every request hands over.
	ids := s.queue.enqueued()
	if len(ids) != n || slices.ContainsFunc(ids, func(id int64) bool { return id != 7 }) {
		t.Errorf("enqueued %v, want deployment 7 %d times", ids, n)
	}
	if got := s.requestsTotal("200"); got != n {
		t.Errorf(`requests_total{code="200"} = %v, want %d`, got, n)
	}
	if got := testutil.ToFloat64(s.handler.alerts[Queued]); got != n {
		t.Errorf(`alerts_total{outcome="queued"} = %v, want %d`, got, n)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{})
	const help = `# HELP steam_remediator_alerts_total Alerts received in accepted webhook notifications, by what was done with them.
# TYPE steam_remediator_alerts_total counter
steam_remediator_alerts_total{outcome="ignored_alertname"} 0
steam_remediator_alerts_total{outcome="ignored_bad_deployment_id"} 0
steam_remediator_alerts_total{outcome="ignored_no_deployment_id"} 0
steam_remediator_alerts_total{outcome="ignored_resolved"} %d
steam_remediator_alerts_total{outcome="ignored_unmatched"} 0
steam_remediator_alerts_total{outcome="queued"} %d
steam_remediator_alerts_total{outcome="unknown_deployment"} %d
# HELP steam_remediator_webhook_registry_errors_total Webhook notifications answered 503, for Alertmanager to retry, because Steam's registry could not be read.
# TYPE steam_remediator_webhook_registry_errors_total counter
steam_remediator_webhook_registry_errors_total 0
# HELP steam_remediator_webhook_requests_total Webhook requests received, by HTTP status code of the reply.
# TYPE steam_remediator_webhook_requests_total counter
steam_remediator_webhook_requests_total{code="200"} %d
steam_remediator_webhook_requests_total{code="400"} %d
steam_remediator_webhook_requests_total{code="401"} 0
steam_remediator_webhook_requests_total{code="405"} 0
steam_remediator_webhook_requests_total{code="413"} 0
steam_remediator_webhook_requests_total{code="415"} 0
steam_remediator_webhook_requests_total{code="503"} 0
`
	check := func(resolved, queued, unknown, ok, bad int) {
		t.Helper()
		want := strings.NewReader(fmt.Sprintf(help, resolved, queued, unknown, ok, bad))
		if err := testutil.GatherAndCompare(s.reg, want, "steam_remediator_alerts_total", "steam_remediator_webhook_requests_total",
			"steam_remediator_webhook_registry_errors_total"); err != nil {
			t.Error(err)
		}
	}
	check(0, 0, 0, 0, 0) // every series exists before the first request
	s.do(t, http.MethodPost, bytes.NewReader(fixture(t, "mixed.json")), nil)
	s.do(t, http.MethodPost, bytes.NewReader(fixture(t, "unknown-id.json")), nil)
	s.do(t, http.MethodPost, strings.NewReader("{"), nil)
	check(1, 3, 1, 2, 1)

	problems, err := testutil.GatherAndLint(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h, err := New(withRegistry(Config{}), &recordingQueue{}, prometheus.NewRegistry(),
		slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, body := range []string{string(fixture(t, "mixed.json")), string(fixture(t, "unknown-id.json")), "{"} {
		resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	type line struct {
		Level, Msg, Err string
		Alerts, Queued  int
		Unknown         int `json:"unknown_deployments"`
		Outcome, Status string
		DeploymentID    string `json:"deployment_id"`
		Code            int
	}
	var got []line
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	want := []line{
		{Level: "DEBUG", Msg: "Ignored alert", Outcome: "ignored_resolved", Status: "resolved", DeploymentID: "7"},
		{Level: "INFO", Msg: "Accepted webhook notification", Alerts: 2, Queued: 1},
		{Level: "DEBUG", Msg: "Ignored alert", Outcome: "unknown_deployment", Status: "firing", DeploymentID: "4242"},
		{Level: "INFO", Msg: "Accepted webhook notification", Alerts: 3, Queued: 2, Unknown: 1},
		{Level: "WARN", Msg: "Rejected webhook request", Code: 400, Err: "decoding payload at byte 1: unexpected end of JSON input"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines\n got %+v\nwant %+v", got, want)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cfg        Config
		queue      Queue
		noRegistry bool
		wantErr    string
	}{
		{name: "defaults", queue: &recordingQueue{}},
		{name: "no queue", wantErr: "no queue"},
		{name: "no registry", queue: &recordingQueue{}, noRegistry: true, wantErr: "no registry"},
		{name: "negative margin", cfg: Config{Margin: -1}, queue: &recordingQueue{}, wantErr: "negative margin"},
		{name: "empty alert name", cfg: Config{AlertNames: []string{"SteamDeploymentDown", ""}}, queue: &recordingQueue{}, wantErr: "empty alert name"},
		{name: "empty label name", cfg: Config{Match: map[string]string{"": "x"}}, queue: &recordingQueue{}, wantErr: "empty label name"},
		{name: "negative body limit", cfg: Config{MaxBody: -1}, queue: &recordingQueue{}, wantErr: "negative maximum body size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if !tc.noRegistry {
				cfg = withRegistry(cfg)
			}
			h, err := New(cfg, tc.queue, prometheus.NewRegistry(), nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"SteamDeploymentDown", "SteamDeploymentUnresponsive", "SteamDeploymentExited"}
				if !slices.Equal(h.alertNames, want) || h.maxBody != DefaultMaxBody || h.margin != DefaultMargin || h.token != nil {
					t.Errorf("defaults: alert names %v, max body %d, margin %d, token %v", h.alertNames, h.maxBody, h.margin, h.token)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}

	t.Run("registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := New(withRegistry(Config{}), &recordingQueue{}, reg, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := New(withRegistry(Config{}), &recordingQueue{}, reg, nil); err == nil || !strings.Contains(err.Error(), "registering metrics") {
			t.Errorf("error %v, want a registration error", err)
		}
	})
}

// TestRegistryUnreadable: while the registry cannot be read, a
// notification is answered 503, for Alertmanager to retry, and only the
// deployments of the last read that succeeded are queued meanwhile; with no
// such read, none is.
func TestRegistryUnreadable(t *testing.T) {
	t.Parallel()
	locked := errors.New("database is locked")
	for _, tc := range []struct {
		name    string
		prime   func(s *testServer) // what happened before the registry became unreadable
		margin  int
		wantIDs []int64
	}{
		{name: "never read", prime: func(*testServer) {}},
		{name: "refreshed at start", prime: func(s *testServer) {
			if err := s.handler.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, wantIDs: []int64{7}},
		{name: "read by an earlier notification", prime: func(s *testServer) {
			s.do(t, http.MethodPost, bytes.NewReader(fixture(t, "resolved.json")), nil) // reads nothing
			s.do(t, http.MethodPost, bytes.NewReader(fixture(t, "firing.json")), nil)
			s.queue.mu.Lock()
			s.queue.ids = nil
			s.queue.mu.Unlock()
		}, wantIDs: []int64{7}},
		{name: "more deployments than known", margin: 1, prime: func(s *testServer) {
			if err := s.handler.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var readable atomic.Bool
			readable.Store(true)
			s := newTestServer(t, Config{Margin: tc.margin, Known: func(context.Context) (map[int64]bool, error) {
				if !readable.Load() {
					return nil, locked
				}
				return map[int64]bool{7: true}, nil
			}})
			tc.prime(s)
			readable.Store(false)
			resp := s.do(t, http.MethodPost, bytes.NewReader(fixture(t, "several.json")), nil) // 7, 8 and 12
			if resp.code != http.StatusServiceUnavailable || !bytes.Contains(resp.body, []byte("retry later")) {
				t.Errorf("reply %d %s, want 503 asking for a retry", resp.code, resp.body)
			}
			if want := fmt.Sprintf("meanwhile %d alerts", len(tc.wantIDs)); !bytes.Contains(resp.body, []byte(want)) {
				t.Errorf("reply %s does not say %q", resp.body, want)
			}
			if ids := s.queue.enqueued(); !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("enqueued %v, want %v", ids, tc.wantIDs)
			}
			if got := testutil.ToFloat64(s.handler.registryErrors); got != 1 {
				t.Errorf("registry errors %v, want 1", got)
			}
		})
	}
	t.Run("refresh fails", func(t *testing.T) {
		s := newTestServer(t, Config{Known: registry(locked)})
		if err := s.handler.Refresh(context.Background()); !errors.Is(err, locked) {
			t.Errorf("Refresh: %v, want %v", err, locked)
		}
	})
}
