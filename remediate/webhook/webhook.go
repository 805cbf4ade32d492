// Package webhook receives Alertmanager's notifications and queues the
// deployments of matching firing alerts. It only decides and enqueues, then
// replies at once: a restart takes longer than Alertmanager waits, and a 5xx
// would make it resend.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steam-overseer/steam-overseer/remediate"
)

// Queue takes deployments to remediate; Enqueue must not block.
type Queue interface {
	Enqueue(deploymentID int64, alertname string)
}

// DefaultAlertNames are the exporter's verdicts that a deployment needs a restart.
var DefaultAlertNames = []string{remediate.AlertDown, remediate.AlertUnresponsive, remediate.AlertExited}

const (
	DefaultMaxBody = 1 << 20
	// DefaultMargin fits alerts of just-deleted deployments or of other hosts,
	// not a body stuffed with made-up ids.
	DefaultMargin = 100
)

// Config says which alerts are acted on and how requests are accepted.
type Config struct {
	AlertNames []string
	// Match labels let one Alertmanager serve many hosts; as in Prometheus,
	// an empty value matches a missing label.
	Match   map[string]string
	MaxBody int64
	Token   *Token
	// Known (required) lists the registry's ids: an unknown id costs a
	// registry read, never a lock file, a journal row or a place in the queue.
	Known  func(ctx context.Context) (map[int64]bool, error)
	Margin int
}

// Summary is the reply to an accepted notification.
type Summary struct {
	Alerts []AlertSummary `json:"alerts"`
	Queued int            `json:"queued"`
}

// AlertSummary is one alert's outcome; DeploymentID is the label as received.
type AlertSummary struct {
	Fingerprint  string  `json:"fingerprint"`
	Alertname    string  `json:"alertname"`
	DeploymentID string  `json:"deployment_id"`
	Status       string  `json:"status"`
	Outcome      Outcome `json:"outcome"`
}

var codes = []int{
	http.StatusOK,
	http.StatusBadRequest,
	http.StatusUnauthorized,
	http.StatusMethodNotAllowed,
	http.StatusRequestEntityTooLarge,
	http.StatusUnsupportedMediaType,
	http.StatusServiceUnavailable,
}

// Handler serves the webhook endpoint.
type Handler struct {
	alertNames []string
	match      map[string]string
	maxBody    int64
	token      *Token
	known      func(ctx context.Context) (map[int64]bool, error)
	margin     int
	queue      Queue
	logger     *slog.Logger

	shuttingDown atomic.Bool
	// lastKnown is the last good registry read, used while it cannot be read.
	lastKnown atomic.Pointer[map[int64]bool]

	requests       *prometheus.CounterVec
	alerts         map[Outcome]prometheus.Counter
	registryErrors prometheus.Counter
}

// New returns a Handler enqueueing onto q, its metrics registered on reg.
func New(cfg Config, q Queue, reg prometheus.Registerer, logger *slog.Logger) (*Handler, error) {
	if q == nil {
		return nil, errors.New("webhook: no queue")
	}
	if cfg.Known == nil {
		return nil, errors.New("webhook: no registry to resolve deployment ids against")
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
		token:      cfg.Token,
		known:      cfg.Known,
		margin:     cfg.Margin,
		queue:      q,
		logger:     logger,
	}
	if len(h.alertNames) == 0 {
		h.alertNames = slices.Clone(DefaultAlertNames)
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
	switch {
	case h.margin < 0:
		return nil, fmt.Errorf("webhook: negative margin of deployments %d", h.margin)
	case h.margin == 0:
		h.margin = DefaultMargin
	}

	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steam_remediator_webhook_requests_total",
		Help: "Webhook requests received, by HTTP status code of the reply.",
	}, []string{"code"})
	alerts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steam_remediator_alerts_total",
		Help: "Alerts received in accepted webhook notifications, by what was done with them.",
	}, []string{"outcome"})
	h.registryErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "steam_remediator_webhook_registry_errors_total",
		Help: "Webhook notifications answered 503, for Alertmanager to retry, because Steam's registry could not be read.",
	})
	for _, c := range codes {
		h.requests.WithLabelValues(strconv.Itoa(c))
	}
	h.alerts = make(map[Outcome]prometheus.Counter, len(outcomes))
	for _, o := range outcomes {
		h.alerts[o] = alerts.WithLabelValues(string(o))
	}
	for _, c := range []prometheus.Collector{h.requests, alerts, h.registryErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook: registering metrics: %w", err)
		}
	}
	return h, nil
}

// Shutdown answers later requests 503, which Alertmanager retries.
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
	if h.token != nil && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="steam-overseer"`)
		h.reject(w, r, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
		return
	}
	// Only JSON: browsers send text/plain and form bodies cross-origin without
	// a preflight, which would let any web page trigger remediations.
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		h.reject(w, r, http.StatusUnsupportedMediaType, err)
		return
	}
	if r.ContentLength > h.maxBody {
		h.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes exceeds the limit of %d", r.ContentLength, h.maxBody))
		return
	}
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
	s, code, err := h.accept(r.Context(), msg)
	if err != nil {
		h.reject(w, r, code, err)
		return
	}
	h.reply(w, http.StatusOK, s)
}

// checkContentType refuses a charset other than UTF-8, the only one JSON allows.
func checkContentType(v string) error {
	if v == "" {
		return errors.New("no Content-Type, send application/json")
	}
	mediaType, params, err := mime.ParseMediaType(v)
	if err != nil {
		return fmt.Errorf("bad Content-Type %q, send application/json: %w", v, err)
	}
	if mediaType != "application/json" {
		return fmt.Errorf("content type %s not accepted, send application/json", mediaType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("charset %s not accepted, send UTF-8 JSON", cs)
	}
	return nil
}

// accept queues nothing unless the whole notification is accepted: the
// registry readable (else 503) and not far more ids than Steam has (413).
func (h *Handler) accept(ctx context.Context, msg *message) (*Summary, int, error) {
	s := &Summary{Alerts: make([]AlertSummary, len(msg.Alerts))}
	ids := make([]int64, len(msg.Alerts))
	distinct := map[int64]bool{}
	for i, a := range msg.Alerts {
		s.Alerts[i] = AlertSummary{
			Fingerprint:  a.Fingerprint,
			Alertname:    a.Labels["alertname"],
			DeploymentID: a.Labels["deployment_id"],
			Status:       a.Status,
		}
		s.Alerts[i].Outcome, ids[i] = h.classify(a)
		if s.Alerts[i].Outcome == Queued {
			distinct[ids[i]] = true
		}
	}
	if len(distinct) > 0 {
		known, err := h.known(ctx)
		if err != nil {
			h.registryErrors.Inc()
			queued := h.queueLastKnown(s, ids, len(distinct))
			return nil, http.StatusServiceUnavailable, fmt.Errorf("cannot read Steam's deployments to check the alerts against; retry later "+
				"(meanwhile %d alerts of deployments in the last registry read were queued): %w", queued, err)
		}
		h.lastKnown.Store(&known)
		if limit := len(known) + h.margin; len(distinct) > limit {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("notification names %d distinct deployments, more than the %d Steam has plus a margin of %d: refused, nothing queued",
				len(distinct), len(known), h.margin)
		}
		for i := range s.Alerts {
			if s.Alerts[i].Outcome == Queued && !known[ids[i]] {
				s.Alerts[i].Outcome = UnknownDeployment
			}
		}
	}

	unknown := 0
	for i, a := range s.Alerts {
		h.alerts[a.Outcome].Inc()
		if a.Outcome == Queued {
			h.queue.Enqueue(ids[i], a.Alertname)
			s.Queued++
			continue
		}
		if a.Outcome == UnknownDeployment {
			unknown++
		}
		h.logger.Debug("Ignored alert", "fingerprint", a.Fingerprint, "alertname", a.Alertname,
			"deployment_id", a.DeploymentID, "status", a.Status, "outcome", a.Outcome)
	}
	h.logger.Info("Accepted webhook notification", "receiver", msg.Receiver, "group_key", msg.GroupKey,
		"alerts", len(msg.Alerts), "queued", s.Queued, "unknown_deployments", unknown)
	if msg.TruncatedAlerts > 0 {
		h.logger.Warn("Notification truncated by Alertmanager", "group_key", msg.GroupKey, "truncated_alerts", msg.TruncatedAlerts)
	}
	return s, http.StatusOK, nil
}

// queueLastKnown queues, while the registry cannot be read, the ids of the
// last good read: the engine rereads each row before acting.
func (h *Handler) queueLastKnown(s *Summary, ids []int64, distinct int) int {
	known := h.lastKnown.Load()
	if known == nil || distinct > len(*known)+h.margin {
		return 0
	}
	queued := 0
	for i, a := range s.Alerts {
		if a.Outcome == Queued && (*known)[ids[i]] {
			h.queue.Enqueue(ids[i], a.Alertname)
			queued++
		}
	}
	h.logger.Warn("Steam's registry cannot be read; queued the deployments of its last read", "queued", queued, "alerts", len(s.Alerts))
	return queued
}

// Refresh reads the registry ahead of the first notification.
func (h *Handler) Refresh(ctx context.Context) error {
	known, err := h.known(ctx)
	if err != nil {
		return fmt.Errorf("reading Steam's deployments: %w", err)
	}
	h.lastKnown.Store(&known)
	return nil
}

// classify reads the alert's own status and labels; the id is valid if Queued.
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
	return ok && strings.EqualFold(scheme, "Bearer") && h.token.matches(token)
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
	_ = json.NewEncoder(w).Encode(v)
}
