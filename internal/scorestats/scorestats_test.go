package scorestats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSteamAnswers(t *testing.T) {
	tests := []struct {
		file                   string
		predictions, posts     float64
		predictionMs, lastTime float64
	}{
		{"steam-serving.json", 130, 120, 84.526, 1764777662512},
		{"steam-fresh.json", 0, 0, 0, 0},
		{"steam-no-python.json", 1e7, 1e7, 2500000.5, 1466191340000},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			s, err := Decode(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if s.Prediction.Count != tc.predictions || s.Post.Count != tc.posts ||
				s.Prediction.TotalTimeMs != tc.predictionMs || float64(s.LastTime) != tc.lastTime {
				t.Errorf("decoded %+v", s)
			}
		})
	}
}

// wrongTypes replaces, one at a time, every field of a real answer (and of
// its nested objects) with a value of another type.
func wrongTypes(t *testing.T, b []byte) map[string][]byte {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	wrong := func(v any) any {
		switch v.(type) {
		case string:
			return 12
		case float64:
			return "12"
		default:
			return []int{1}
		}
	}
	out := map[string][]byte{}
	marshal := func(name string) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	for k, v := range doc {
		doc[k] = wrong(v)
		marshal(k)
		doc[k] = v
		if inner, ok := v.(map[string]any); ok {
			for ik, iv := range inner {
				inner[ik] = wrong(iv)
				marshal(k + "." + ik)
				inner[ik] = iv
			}
		}
	}
	return out
}

func TestDecodeRefusesWrongTypes(t *testing.T) {
	cases := wrongTypes(t, fixture(t, "steam-serving.json"))
	if len(cases) < 50 {
		t.Fatalf("only %d cases", len(cases))
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if s, err := Decode(b); Reason(err) != ReasonMalformed {
				t.Errorf("Decode = %+v, %v; want %s", s, err, ReasonMalformed)
			}
		})
	}
}

func TestDecodeRefusesBadAnswers(t *testing.T) {
	good := string(fixture(t, "steam-serving.json"))
	tests := []struct {
		name, body, reason string
	}{
		{"empty", "", ReasonMalformed},
		{"html", "<html>Error 500</html>", ReasonMalformed},
		{"array", "[1,2]", ReasonMalformed},
		{"null", "null", ReasonMalformed},
		{"trailing garbage", good + "x", ReasonMalformed},
		{"NaN as Gson writes it", strings.Replace(good, `"lastMs":0.2512`, `"lastMs":NaN`, 1), ReasonMalformed},
		{"no prediction", strings.Replace(good, `"prediction":`, `"predictions":`, 1), ReasonMalformed},
		{"null prediction", `{"startTime":1,"lastTime":0,"prediction":null,"get":{},"post":{}}`, ReasonMalformed},
		{"count too big for an int64", strings.Replace(good, `"count":130.0`, `"count":1e400`, 1), ReasonMalformed},
		{"negative count", strings.Replace(good, `"count":130.0`, `"count":-1.0`, 1), ReasonInvalid},
		{"fractional count", strings.Replace(good, `"count":130.0`, `"count":130.5`, 1), ReasonInvalid},
		{"negative time", strings.Replace(good, `"totalTimeMs":84.526`, `"totalTimeMs":-84.526`, 1), ReasonInvalid},
		{"last before start", strings.Replace(good, `"lastTime":1764777662512`, `"lastTime":5`, 1), ReasonInvalid},
		{"no start", strings.Replace(good, `"startTime":1764774062000`, `"startTime":0`, 1), ReasonInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := Decode([]byte(tc.body)); Reason(err) != tc.reason {
				t.Errorf("Decode = %+v, %v; want %s", s, err, tc.reason)
			}
		})
	}
}

func TestFetch(t *testing.T) {
	good := fixture(t, "steam-serving.json")
	tests := []struct {
		name    string
		handler http.HandlerFunc
		reason  string // "" for success
	}{
		{"steam's answer", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/stats" || r.Method != http.MethodGet {
				http.NotFound(w, r)
				return
			}
			w.Write(good)
		}, ""},
		{"no stats page", http.NotFound, ReasonNoStats},
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "model failed", http.StatusNotAcceptable)
		}, ReasonStatus},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
			w.Write(good)
		}, ReasonTimeout},
		{"trickles forever", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"startTime":`))
			for r.Context().Err() == nil {
				w.Write([]byte(" "))
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
			}
		}, ReasonTimeout},
		{"never ends", func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte(" "), 4096)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, ReasonTooLarge},
		{"10 MB announced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(10<<20))
			w.Write(bytes.Repeat([]byte(" "), 10<<20))
		}, ReasonTooLarge},
		{"redirect elsewhere", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		}, ReasonStatus},
		{"malformed", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"startTime": "yesterday"}`))
		}, ReasonMalformed},
		{"connection cut", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(good)))
			w.Write(good[:100])
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, ReasonConnect},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			s, err := Fetch(ctx, srv.Client(), srv.URL+"/")
			if Reason(err) != tc.reason {
				t.Fatalf("Fetch = %+v, %v; want reason %q", s, err, tc.reason)
			}
			if tc.reason == "" && s.Prediction.Count != 130 {
				t.Errorf("predictions %v, want 130", s.Prediction.Count)
			}
			if tc.reason == ReasonNoStats && !errors.Is(err, ErrNoStats) {
				t.Errorf("404 gives %v, want ErrNoStats", err)
			}
		})
	}
}

func TestFetchNobodyListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Fetch(context.Background(), http.DefaultClient, "http://"+addr)
	if Reason(err) != ReasonConnect {
		t.Errorf("Fetch of a closed port: %v, want %s", err, ReasonConnect)
	}
}

// FuzzDecode: whatever a deployment answers, Decode returns a checked
// Stats or an error with a reason, never a panic.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"steam-serving.json", "steam-fresh.json", "steam-no-python.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"startTime":1,"lastTime":0,"prediction":{},"get":{},"post":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			if r := Reason(err); r != ReasonMalformed && r != ReasonInvalid {
				t.Fatalf("reason %q for %v", r, err)
			}
			return
		}
		if err := s.check(); err != nil {
			t.Fatalf("accepted an impossible answer: %v", err)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	body := fixture(b, "steam-serving.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
