// Package webhook receives Alertmanager's webhook notifications and hands
// the deployments of matching firing alerts to the remediation queue.
//
// The handler only decides and enqueues, then replies at once: a restart
// takes far longer than Alertmanager waits for a reply, and a 5xx would make
// it send the notification again. Whether a queued deployment really needs a
// restart is the queue's business; the same notification arrives more than
// once (HA pairs, repeat_interval), so the queue coalesces duplicates.
package webhook

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Queue takes deployments to remediate. Enqueue must not block; the engine
// coalesces duplicates.
type Queue interface {
	Enqueue(deploymentID int64, alertname string)
}

// Defaults for the zero values of Config.
const (
	DefaultAlertName = "SteamDeploymentDown"
	DefaultMaxBody   = 1 << 20
)

// Config says which alerts are acted on and how requests are accepted.
type Config struct {
	// AlertNames are the alertname values acted on; empty means
	// DefaultAlertName.
	AlertNames []string
	// Match holds labels every acted-on alert must carry with exactly these
	// values, so that one Alertmanager can serve many Steam hosts. As in
	// Prometheus, an empty value matches a missing label.
	Match map[string]string
	// MaxBody is the largest accepted body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// BearerToken, when not empty, must come in "Authorization: Bearer".
	BearerToken []byte
}

// Summary is the reply to an accepted notification.
type Summary struct {
	Alerts []AlertSummary `json:"alerts"`
	Queued int            `json:"queued"`
}

// AlertSummary says what was done with one alert. DeploymentID is the
// label's value as received, so that a bad one can be seen.
type AlertSummary struct {
	Fingerprint  string  `json:"fingerprint"`
	Alertname    string  `json:"alertname"`
	DeploymentID string  `json:"deployment_id"`
	Status       string  `json:"status"`
	Outcome      Outcome `json:"outcome"`
}

// Status codes the handler replies with, initialised in
// steam_remediator_webhook_requests_total.
var codes = []int{
	http.StatusOK,
	http.StatusBadRequest,
	http.StatusUnauthorized,
	http.StatusMethodNotAllowed,
	http.StatusRequestEntityTooLarge,
	http.StatusServiceUnavailable,
}

// Handler is the http.Handler of the webhook endpoint.
type Handler struct {
	alertNames []string
	match      map[string]string
	maxBody    int64
	token      bool
	tokenHash  [sha256.Size]byte
	queue      Queue
	logger     *slog.Logger

	shuttingDown atomic.Bool

	requests *prometheus.CounterVec
	alerts   map[Outcome]prometheus.Counter
}

// New returns a Handler that enqueues onto q and registers its metrics on
// reg.
func New(cfg Config, q Queue, reg prometheus.Registerer, logger *slog.Logger) (*Handler, error) {
	if q == nil {
		return nil, errors.New("webhook: no queue")
	}
	if reg == nil {
		return nil, errors.New("webhook: no registerer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		alertNames: slices.Clone(cfg.AlertNames),
		match:      make(map[string]string, len(cfg.Match)),
		maxBody:    cfg.MaxBody,
		queue:      q,
		logger:     logger,
	}
	if len(h.alertNames) == 0 {
		h.alertNames = []string{DefaultAlertName}
	}
	if slices.Contains(h.alertNames, "") {
		return nil, errors.New("webhook: empty alert name")
	}
	for name, value := range cfg.Match {
		if name == "" {
			return nil, fmt.Errorf("webhook: empty label name in match %q", value)
		}
		h.match[name] = value
	}
	switch {
	case h.maxBody < 0:
		return nil, fmt.Errorf("webhook: negative maximum body size %d", h.maxBody)
	case h.maxBody == 0:
		h.maxBody = DefaultMaxBody
	}
	if len(cfg.BearerToken) > 0 {
		// Comparing hashes keeps the comparison constant-time in the
		// token's length too.
		h.token = true
		h.tokenHash = sha256.Sum256(cfg.BearerToken)
	}

	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steam_remediator_webhook_requests_total",
		Help: "Webhook requests received, by HTTP status code of the reply.",
	}, []string{"code"})
	alerts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steam_remediator_alerts_total",
		Help: "Alerts received in accepted webhook notifications, by what was done with them.",
	}, []string{"outcome"})
	for _, c := range codes {
		h.requests.WithLabelValues(strconv.Itoa(c))
	}
	h.alerts = make(map[Outcome]prometheus.Counter, len(outcomes))
	for _, o := range outcomes {
		h.alerts[o] = alerts.WithLabelValues(string(o))
	}
	for _, c := range []prometheus.Collector{h.requests, alerts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook: registering metrics: %w", err)
		}
	}
	return h, nil
}

// ReadTokenFile reads a bearer token the way Alertmanager reads its
// credentials_file: surrounding whitespace, such as the final newline, is
// not part of the token. An empty token is an error, as it would let every
// request in.
func ReadTokenFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bearer token: %w", err)
	}
	token := bytes.TrimSpace(b)
	if len(token) == 0 {
		return nil, fmt.Errorf("bearer token file %s is empty", path)
	}
	return token, nil
}

// Shutdown makes the handler answer every later request with 503, which
// Alertmanager retries, so that no notification is taken while the queue
// behind it is stopping.
func (h *Handler) Shutdown() {
	h.shuttingDown.Store(true)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.shuttingDown.Load() {
		h.reject(w, r, http.StatusServiceUnavailable, errors.New("shutting down"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, r, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed, use POST", r.Method))
		return
	}
	if h.token && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="steam-overseer"`)
		h.reject(w, r, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
		return
	}
	if r.ContentLength > h.maxBody {
		h.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes exceeds the limit of %d", r.ContentLength, h.maxBody))
		return
	}
	// Sized from Content-Length, the body is read in one allocation.
	var body bytes.Buffer
	body.Grow(int(max(r.ContentLength, 0)) + bytes.MinRead)
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds the limit of %d bytes", h.maxBody))
			return
		}
		h.reject(w, r, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		return
	}
	msg, err := decode(body.Bytes())
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, err)
		return
	}
	h.reply(w, http.StatusOK, h.accept(msg))
}

// accept decides every alert of msg on its own and enqueues the queued
// ones. It cannot fail: a decoded payload is always answered 200.
func (h *Handler) accept(msg *message) *Summary {
	s := &Summary{Alerts: make([]AlertSummary, len(msg.Alerts))}
	for i, a := range msg.Alerts {
		outcome, id := h.classify(a)
		s.Alerts[i] = AlertSummary{
			Fingerprint:  a.Fingerprint,
			Alertname:    a.Labels["alertname"],
			DeploymentID: a.Labels["deployment_id"],
			Status:       a.Status,
			Outcome:      outcome,
		}
		h.alerts[outcome].Inc()
		if outcome != Queued {
			h.logger.Debug("Ignored alert", "fingerprint", a.Fingerprint, "alertname", s.Alerts[i].Alertname,
				"deployment_id", s.Alerts[i].DeploymentID, "status", a.Status, "outcome", outcome)
			continue
		}
		h.queue.Enqueue(id, s.Alerts[i].Alertname)
		s.Queued++
	}
	h.logger.Info("Accepted webhook notification", "receiver", msg.Receiver, "group_key", msg.GroupKey,
		"alerts", len(msg.Alerts), "queued", s.Queued)
	if msg.TruncatedAlerts > 0 {
		// Alertmanager's max_alerts dropped some: their deployments come
		// only with a later notification.
		h.logger.Warn("Notification truncated by Alertmanager", "group_key", msg.GroupKey, "truncated_alerts", msg.TruncatedAlerts)
	}
	return s
}

// classify decides what to do with one alert, from its own status and
// labels only. The id is valid only when the outcome is Queued.
func (h *Handler) classify(a *alert) (Outcome, int64) {
	if a.Status != statusFiring {
		return IgnoredResolved, 0
	}
	if !slices.Contains(h.alertNames, a.Labels["alertname"]) {
		return IgnoredAlertname, 0
	}
	for name, value := range h.match {
		if a.Labels[name] != value {
			return IgnoredUnmatched, 0
		}
	}
	raw := a.Labels["deployment_id"]
	if raw == "" {
		return IgnoredNoDeploymentID, 0
	}
	id, ok := parseDeploymentID(raw)
	if !ok {
		return IgnoredBadDeploymentID, 0
	}
	return Queued, id
}

func (h *Handler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, code int, err error) {
	h.logger.Warn("Rejected webhook request", "code", code, "remote", r.RemoteAddr, "err", err)
	h.reply(w, code, struct {
		Error string `json:"error"`
	}{err.Error()})
}

func (h *Handler) reply(w http.ResponseWriter, code int, v any) {
	h.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// An error here means the client has gone; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}
