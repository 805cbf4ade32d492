package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// payloadVersion has been "4" since Alertmanager 0.7.
const payloadVersion = "4"

const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// message is the payload's part used: each alert's own status and labels.
type message struct {
	Version         string   `json:"version"`
	GroupKey        string   `json:"groupKey"`
	Receiver        string   `json:"receiver"`
	TruncatedAlerts uint64   `json:"truncatedAlerts"`
	Alerts          []*alert `json:"alerts"`
}

// alert omits endsAt: a firing alert's is zero; status alone says it fires.
type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Fingerprint string            `json:"fingerprint"`
}

// decode rejects the whole payload on any error.
func decode(body []byte) (*message, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("empty body, want a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, errors.New("body is not a JSON object")
	}
	var msg message
	if err := json.Unmarshal(body, &msg); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, fmt.Errorf("decoding payload at byte %d: %w", se.Offset, err)
		}
		return nil, fmt.Errorf("decoding payload: %w", err)
	}
	if msg.Version == "" {
		return nil, errors.New(`missing "version"`)
	}
	if msg.Version != payloadVersion {
		return nil, fmt.Errorf("unsupported payload version %q, want %q", msg.Version, payloadVersion)
	}
	// Alertmanager always sends the array; null means not a notification.
	if msg.Alerts == nil {
		return nil, errors.New(`missing "alerts" array`)
	}
	for i, a := range msg.Alerts {
		if a == nil {
			return nil, fmt.Errorf("alert %d is null", i)
		}
		if a.Status != statusFiring && a.Status != statusResolved {
			return nil, fmt.Errorf("alert %d: unknown status %q, want %q or %q", i, a.Status, statusFiring, statusResolved)
		}
	}
	return &msg, nil
}

// Outcome says what was done with one alert.
type Outcome string

// Outcomes are the values of steam_remediator_alerts_total's outcome label.
const (
	Queued                 Outcome = "queued"
	IgnoredResolved        Outcome = "ignored_resolved"
	IgnoredAlertname       Outcome = "ignored_alertname"
	IgnoredUnmatched       Outcome = "ignored_unmatched"
	IgnoredNoDeploymentID  Outcome = "ignored_no_deployment_id"
	IgnoredBadDeploymentID Outcome = "ignored_bad_deployment_id"
	UnknownDeployment      Outcome = "unknown_deployment"
)

var outcomes = []Outcome{Queued, IgnoredResolved, IgnoredAlertname, IgnoredUnmatched, IgnoredNoDeploymentID, IgnoredBadDeploymentID, UnknownDeployment}

// parseDeploymentID accepts only the canonical form: "07" is not 7.
func parseDeploymentID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != s {
		return 0, false
	}
	return id, true
}
