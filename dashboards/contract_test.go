package dashboards

import "strings"

// metricKind is how a metric may be queried: a counter only through rate()
// or increase().
type metricKind int

const (
	gauge metricKind = iota
	counter
	histogram
	summary // without quantiles: _sum and _count only
)

// metric is one metric of the contract between the exporter, the
// remediator, the rules and the dashboard (issues 2, 3 and 5), or one that
// Prometheus itself writes.
type metric struct {
	kind   metricKind
	labels []string // besides job and instance
}

var (
	deploymentLabels = []string{"deployment_id", "deployment"}
	buildInfoLabels  = []string{"version", "revision", "branch", "goversion", "goos", "goarch", "tags"}
	// The labels of SteamDeploymentDown, the one alert the dashboard reads.
	alertLabels = []string{"alertname", "alertstate", "severity", "deployment_id", "deployment"}
)

var knownMetrics = map[string]metric{
	"steam_deployment_up":                    {gauge, deploymentLabels},
	"steam_deployment_status":                {gauge, append([]string{"status"}, deploymentLabels...)},
	"steam_deployment_cpu_seconds_total":     {counter, append([]string{"mode"}, deploymentLabels...)},
	"steam_deployment_resident_memory_bytes": {gauge, deploymentLabels},
	"steam_deployment_virtual_memory_bytes":  {gauge, deploymentLabels},
	"steam_deployment_start_time_seconds":    {gauge, deploymentLabels},
	"steam_deployment_info": {gauge, append([]string{"model_id", "model", "project", "port", "address", "state", "war", "problem"},
		deploymentLabels...)},
	"steam_deployment_restarts_total": {counter, deploymentLabels},
	// The background probe (issue 8), for verified-running deployments.
	"steam_deployment_probe_success":           {gauge, deploymentLabels},
	"steam_deployment_probe_duration_seconds":  {gauge, deploymentLabels},
	"steam_deployment_probe_timestamp_seconds": {gauge, deploymentLabels},
	"steam_deployment_probe_failures":          {gauge, deploymentLabels},
	// Absent until the current process answered once (issue 15).
	"steam_deployment_probe_last_success_timestamp_seconds": {gauge, deploymentLabels},
	"steam_exporter_probe_start_grace_seconds":              {gauge, nil},
	"steam_exporter_scrape_success":                         {gauge, nil},
	"steam_exporter_scrape_duration_seconds":                {gauge, nil},
	"steam_exporter_state_scrape_success":                   {gauge, nil},
	"steam_exporter_build_info":                             {gauge, buildInfoLabels},

	"steam_remediator_webhook_requests_total":   {counter, []string{"code"}},
	"steam_remediator_alerts_total":             {counter, []string{"outcome"}},
	"steam_remediator_actions_total":            {counter, []string{"action", "result"}},
	"steam_remediator_restart_duration_seconds": {histogram, nil},
	"steam_remediator_deployment_gave_up":       {gauge, []string{"deployment_id"}},
	"steam_remediator_queue_length":             {gauge, nil},
	"steam_remediator_build_info":               {gauge, buildInfoLabels},
	// Failures nothing else shows (issue 19).
	"steam_remediator_journal_write_failures_total": {counter, nil},
	"steam_remediator_retries_total":                {counter, []string{"outcome"}},
	"steam_remediator_token_last_reload_successful": {gauge, nil},
	"steam_remediator_token_reloads_total":          {counter, []string{"result"}},

	"steam_backup_last_success_timestamp_seconds": {gauge, nil},

	// The exporter's exit watch notifier (issue 15).
	"steam_exporter_notifications_errors_total":  {counter, []string{"alertmanager"}},
	"steam_exporter_notifications_dropped_total": {counter, nil},

	// What a deployment's JVM (hsperfdata) and scoring service (/stats)
	// report about themselves (issue 16).
	"steam_deployment_jvm_memory_used_bytes":             {gauge, append([]string{"area"}, deploymentLabels...)},
	"steam_deployment_jvm_memory_committed_bytes":        {gauge, append([]string{"area"}, deploymentLabels...)},
	"steam_deployment_jvm_memory_max_bytes":              {gauge, append([]string{"area"}, deploymentLabels...)},
	"steam_deployment_jvm_memory_pool_used_bytes":        {gauge, append([]string{"pool"}, deploymentLabels...)},
	"steam_deployment_jvm_memory_pool_committed_bytes":   {gauge, append([]string{"pool"}, deploymentLabels...)},
	"steam_deployment_jvm_memory_pool_max_bytes":         {gauge, append([]string{"pool"}, deploymentLabels...)},
	"steam_deployment_jvm_gc_collection_seconds":         {summary, append([]string{"gc"}, deploymentLabels...)},
	"steam_deployment_jvm_safepoint_seconds":             {summary, deploymentLabels},
	"steam_deployment_jvm_threads_current":               {gauge, deploymentLabels},
	"steam_deployment_jvm_threads_daemon":                {gauge, deploymentLabels},
	"steam_deployment_jvm_classes_currently_loaded":      {gauge, deploymentLabels},
	"steam_deployment_prediction_duration_seconds":       {summary, deploymentLabels},
	"steam_deployment_request_duration_seconds":          {summary, append([]string{"method", "api"}, deploymentLabels...)},
	"steam_deployment_last_prediction_timestamp_seconds": {gauge, deploymentLabels},
	"steam_exporter_deployment_read_errors_total":        {counter, []string{"source", "reason"}},

	// Written by Prometheus: per target, and per active alert.
	"up":                      {gauge, nil},
	"scrape_duration_seconds": {gauge, nil},
	"ALERTS":                  {gauge, alertLabels},
	"ALERTS_FOR_STATE":        {gauge, alertLabels},
}

// lookupMetric finds a series name in the contract: a metric, or one of a
// histogram's _bucket, _sum and _count series or a summary's _sum and
// _count. Those series are counters; _bucket has the le label besides.
func lookupMetric(name string) (metric, bool) {
	if m, ok := knownMetrics[name]; ok && m.kind != histogram && m.kind != summary {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if m, ok := knownMetrics[base]; ok && (m.kind == histogram || m.kind == summary && suffix != "_bucket") {
			labels := m.labels
			if suffix == "_bucket" {
				labels = append([]string{"le"}, labels...)
			}
			return metric{kind: counter, labels: labels}, true
		}
	}
	return metric{}, false
}

// hasLabel says whether series of m carry the label (job, instance and
// prometheus.yml's steam_host are on every scraped series).
func (m metric) hasLabel(name string) bool {
	if name == "job" || name == "instance" || name == "steam_host" || name == "__name__" {
		return true
	}
	for _, l := range m.labels {
		if l == name {
			return true
		}
	}
	return false
}
