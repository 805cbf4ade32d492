// Package webhook receives Alertmanager's webhook notifications and hands
// the deployments of matching firing alerts to the remediation queue.
//
// The handler only decides and enqueues, then replies at once: a restart
// takes far longer than Alertmanager waits for a reply, and a 5xx would make
// it send the notification again. Ids are checked against Steam's registry
// first, so that made-up ones cost nothing downstream. Whether a queued
// deployment really needs a restart is the queue's business; the same
// notification arrives more than once (HA pairs, repeat_interval), so the
// queue coalesces duplicates.
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

// Queue takes deployments to remediate, with the alertname that asked for
// it. Enqueue must not block; the engine coalesces duplicates.
type Queue interface {
	Enqueue(deploymentID int64, alertname string)
}

// DefaultAlertNames are the alerts acted on unless configured otherwise:
// the exporter's verdicts that a deployment is dead, or alive but not
// answering.
var DefaultAlertNames = []string{remediate.AlertDown, remediate.AlertUnresponsive, remediate.AlertExited}

// Defaults for the zero values of Config.
const (
	DefaultMaxBody = 1 << 20
	// DefaultMargin is how many more distinct deployments than Steam holds
	// one notification may name. Alerts of deployments just deleted, or of
	// another host when --webhook.match is not set, fit in it; a body
	// stuffed with thousands of made-up ids does not.
	DefaultMargin = 100
)

// Config says which alerts are acted on and how requests are accepted.
type Config struct {
	// AlertNames are the alertname values acted on; empty means
	// DefaultAlertNames.
	AlertNames []string
	// Match holds labels every acted-on alert must carry with exactly these
	// values, so that one Alertmanager can serve many Steam hosts. As in
	// Prometheus, an empty value matches a missing label.
	Match map[string]string
	// MaxBody is the largest accepted body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// Token, when not nil, must come in "Authorization: Bearer".
	Token *Token
	// Known returns the ids of the deployments in Steam's registry. Only
	// those are queued: an unknown id costs a registry read per request,
	// never a lock file, a journal row or a place in the queue. Required.
	Known func(ctx context.Context) (map[int64]bool, error)
	// Margin is how many more distinct deployments than Known returns a
	// notification may name before it is refused; 0 means DefaultMargin.
	Margin int
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
	http.StatusUnsupportedMediaType,
	http.StatusServiceUnavailable,
}

// Handler is the http.Handler of the webhook endpoint.
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
	// lastKnown is the last registry read that succeeded (nil before the
	// first), the fallback while the registry cannot be read.
	lastKnown atomic.Pointer[map[int64]bool]

	requests       *prometheus.CounterVec
	alerts         map[Outcome]prometheus.Counter
	registryErrors prometheus.Counter
}

// New returns a Handler that enqueues onto q and registers its metrics on
// reg.
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
	if h.token != nil && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="steam-overseer"`)
		h.reject(w, r, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
		return
	}
	// Only JSON: a browser sends text/plain and form bodies to any origin
	// without asking first, so accepting them would let any web page open
	// on the host trigger remediations.
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		h.reject(w, r, http.StatusUnsupportedMediaType, err)
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
	s, code, err := h.accept(r.Context(), msg)
	if err != nil {
		h.reject(w, r, code, err)
		return
	}
	h.reply(w, http.StatusOK, s)
}

// checkContentType accepts application/json with any parameters, but a
// charset other than UTF-8, the only one JSON allows.
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

// accept decides every alert of msg on its own and enqueues the queued
// ones. Nothing is queued unless the whole notification is accepted: the
// registry must be readable (else 503, which Alertmanager retries) and the
// notification must not name far more deployments than Steam has (413).
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
		// Read once per notification, not per alert: one notification
		// holds up to a whole group's alerts.
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
		// Alertmanager's max_alerts dropped some: their deployments come
		// only with a later notification.
		h.logger.Warn("Notification truncated by Alertmanager", "group_key", msg.GroupKey, "truncated_alerts", msg.TruncatedAlerts)
	}
	return s, http.StatusOK, nil
}

// queueLastKnown queues, while the registry cannot be read (Steam holding
// its lock for long, a restore in progress), the deployments of the
// notification that were in the last read that succeeded: the engine reads
// each one's row again before acting, and retries that read, so a
// deployment down now is healed without waiting for Alertmanager's retry,
// which the 503 still asks for. It returns how many alerts were queued.
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

// Refresh reads the registry, so that the deployments it holds can be
// queued even if the registry cannot be read when the first notification
// comes (see queueLastKnown). Every accepted notification refreshes it too.
func (h *Handler) Refresh(ctx context.Context) error {
	known, err := h.known(ctx)
	if err != nil {
		return fmt.Errorf("reading Steam's deployments: %w", err)
	}
	h.lastKnown.Store(&known)
	return nil
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
	// An error here means the client has gone; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}
