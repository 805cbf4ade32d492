// Package scorestats reads the /stats page (StatsServlet) of the wars Steam
// builds: predictions, requests and their time, as the JVM counted them.
// One read, bounded in size and time, decoded strictly.
package scorestats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// MaxBytes bounds a /stats answer; Steam's is about 1.5 KB.
const MaxBytes = 64 << 10

// Reasons a read fails, as the read-errors counter labels them.
const (
	ReasonNoStats   = "no_stats"  // 404: a war without a StatsServlet
	ReasonTimeout   = "timeout"   // no whole answer within the deadline
	ReasonConnect   = "connect"   // no connection, or it broke
	ReasonStatus    = "status"    // an HTTP status other than 200 and 404
	ReasonTooLarge  = "too_large" // more than MaxBytes
	ReasonMalformed = "malformed" // not JSON, or a field of the wrong type
	ReasonInvalid   = "invalid"   // JSON of the right types that cannot be true
)

// ErrNoStats: a 404, counted but not the deployment's fault.
var ErrNoStats = errors.New("no /stats page")

type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func Reason(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	}
	return ReasonConnect
}

// Times are one kind of call's figures in ms; Gson writes counts as doubles.
type Times struct {
	Count                  float64 `json:"count"`
	TotalTimeMs            float64 `json:"totalTimeMs"`
	TotalTimeSquaredMs     float64 `json:"totalTimeSquaredMs"`
	WarmupTimeMs           float64 `json:"warmupTimeMs"`
	WarmupTimeSquaredMs    float64 `json:"warmupTimeSquaredMs"`
	LastMs                 float64 `json:"lastMs"`
	AverageTime            float64 `json:"averageTime"`
	AverageAfterWarmupTime float64 `json:"averageAfterWarmupTime"`
}

// Stats is one /stats answer. Counts and sums only grow while the JVM lives.
type Stats struct {
	StartTime     int64  `json:"startTime"` // ms since the epoch
	LastTime      int64  `json:"lastTime"`  // of the last prediction; 0 before the first
	StartTimeUTC  string `json:"startTimeUTC"`
	LastTimeUTC   string `json:"lastTimeUTC"`
	UpTimeMs      int64  `json:"upTimeMs"`
	LastTimeAgoMs int64  `json:"lastTimeAgoMs"`
	WarmUpCount   int64  `json:"warmUpCount"`
	Prediction    Times  `json:"prediction"`
	Get           Times  `json:"get"`
	Post          Times  `json:"post"`
	// Older builders had no Python endpoints: these stay zero then.
	PythonGet  Times `json:"pythonget"`
	PythonPost Times `json:"pythonpost"`
}

// Decode parses one answer: typed fields, required ones present, possible figures.
func Decode(b []byte) (*Stats, error) {
	var present map[string]json.RawMessage
	if err := json.Unmarshal(b, &present); err != nil {
		return nil, &Error{ReasonMalformed, err}
	}
	for _, k := range []string{"startTime", "lastTime", "prediction", "get", "post"} {
		if v, ok := present[k]; !ok || bytes.Equal(v, []byte("null")) {
			return nil, &Error{ReasonMalformed, fmt.Errorf("no %s", k)}
		}
	}
	var s Stats
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &Error{ReasonMalformed, err}
	}
	if err := s.check(); err != nil {
		return nil, &Error{ReasonInvalid, err}
	}
	return &s, nil
}

func (s *Stats) check() error {
	if s.StartTime <= 0 || s.LastTime < 0 || (s.LastTime > 0 && s.LastTime < s.StartTime) {
		return fmt.Errorf("startTime %d, lastTime %d", s.StartTime, s.LastTime)
	}
	for name, t := range map[string]Times{"prediction": s.Prediction, "get": s.Get, "post": s.Post,
		"pythonget": s.PythonGet, "pythonpost": s.PythonPost} {
		if t.Count < 0 || t.Count > 1<<53 || t.Count != math.Trunc(t.Count) {
			return fmt.Errorf("%s: count %v", name, t.Count)
		}
		if t.TotalTimeMs < 0 || t.TotalTimeSquaredMs < 0 || t.LastMs < 0 {
			return fmt.Errorf("%s: negative time", name)
		}
	}
	return nil
}

// Client suits Fetch: no proxy, and no connection kept, since a stopped JVM
// must not be judged by an old socket.
var Client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
	ReadBufferSize: 2048, WriteBufferSize: 256}}

func Fetch(ctx context.Context, client *http.Client, baseURL string) (*Stats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+"/stats", nil)
	if err != nil {
		return nil, &Error{ReasonConnect, err}
	}
	// A deployment's redirect could send the exporter anywhere: not followed.
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, &Error{readReason(ctx, err), err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, &Error{ReasonNoStats, ErrNoStats}
	case resp.StatusCode != http.StatusOK:
		return nil, &Error{ReasonStatus, fmt.Errorf("HTTP status %s", resp.Status)}
	case resp.ContentLength > MaxBytes:
		return nil, &Error{ReasonTooLarge, fmt.Errorf("%d bytes announced, at most %d read", resp.ContentLength, MaxBytes)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	if err != nil {
		return nil, &Error{readReason(ctx, err), fmt.Errorf("reading /stats: %w", err)}
	}
	if len(b) > MaxBytes {
		return nil, &Error{ReasonTooLarge, fmt.Errorf("more than %d bytes", MaxBytes)}
	}
	return Decode(b)
}

func readReason(ctx context.Context, err error) string {
	var ne interface{ Timeout() bool }
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return ReasonTimeout
	}
	return ReasonConnect
}
