// Package dashboards holds what operators install beside steam-overseer:
// Prometheus alerting rules (alerts.yml, unit-tested by alerts_test.yml), an
// example Alertmanager route to the remediator (alertmanager.yml), an example
// Prometheus configuration (prometheus.yml), and a Grafana dashboard
// (steam-overseer.json) with its provisioning files.
//
// The files are embedded so that the demo and the end-to-end test run
// exactly what is shipped; the functions here change only what a run on one
// machine in seconds has to change (hold times, timers, addresses).
package dashboards

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// The shipped files.
var (
	//go:embed alerts.yml
	AlertRules []byte
	//go:embed alertmanager.yml
	AlertmanagerConfig []byte
	//go:embed prometheus.yml
	PrometheusConfig []byte
	//go:embed steam-overseer.json
	Dashboard []byte
)

// Job names of the shipped prometheus.yml; alerts.yml's up-based rules
// select them.
const (
	ExporterJob   = "steam-exporter"
	RemediatorJob = "steam-remediator"
)

// Receiver names of the shipped alertmanager.yml.
const (
	RemediatorReceiver = "steam-remediator"
	OperatorsReceiver  = "steam-operators"
)

// ExpressionHolds are holds an alert writes into its expression, as seconds
// and as a range, instead of its `for:`: SteamDeploymentUnresponsive counts
// its 2m from the last answer, which a `for:` cannot.
var ExpressionHolds = map[string]time.Duration{"SteamDeploymentUnresponsive": 2 * time.Minute}

// ShortenHolds returns the rule file rules with every `for:` and
// ExpressionHolds divided by factor, so that the alerts fire in seconds and
// still in the shipped order (with factor 30, SteamDeploymentDown's 10s
// becomes 333ms and SteamDeploymentNotRecovered's 15m 30s). Nothing else
// changes: labels, annotations and the rest of the expressions stay the
// shipped ones.
func ShortenHolds(rules []byte, factor int) ([]byte, error) {
	if factor < 1 {
		return nil, fmt.Errorf("hold time factor %d: want 1 or more", factor)
	}
	var file yaml.MapSlice
	if err := yaml.Unmarshal(rules, &file); err != nil {
		return nil, fmt.Errorf("parsing rule file: %w", err)
	}
	groups, ok := lookup(file, "groups").([]any)
	if !ok {
		return nil, errors.New("rule file has no groups")
	}
	for _, g := range groups {
		group, _ := g.(yaml.MapSlice)
		rs, _ := lookup(group, "rules").([]any)
		for _, r := range rs {
			rule, _ := r.(yaml.MapSlice)
			if err := shortenExpressionHold(rule, factor); err != nil {
				return nil, err
			}
			for i, item := range rule {
				if item.Key != "for" {
					continue
				}
				s, _ := item.Value.(string)
				d, err := model.ParseDuration(s)
				if err != nil {
					return nil, fmt.Errorf("rule %v: for: %w", lookup(rule, "alert"), err)
				}
				rule[i].Value = (d / model.Duration(factor)).String()
			}
		}
	}
	return yaml.Marshal(file)
}

func shortenExpressionHold(rule yaml.MapSlice, factor int) error {
	name, _ := lookup(rule, "alert").(string)
	hold, ok := ExpressionHolds[name]
	if !ok {
		return nil
	}
	seconds := regexp.MustCompile(`\b` + strconv.Itoa(int(hold.Seconds())) + `\b`)
	rangeSel := "[" + model.Duration(hold).String() + "]"
	for i, item := range rule {
		expr, _ := item.Value.(string)
		if item.Key != "expr" {
			continue
		}
		if !seconds.MatchString(expr) && !strings.Contains(expr, rangeSel) {
			return fmt.Errorf("rule %s: its hold of %s is not in its expression", name, hold)
		}
		expr = seconds.ReplaceAllString(expr, strconv.FormatFloat(hold.Seconds()/float64(factor), 'f', -1, 64))
		rule[i].Value = strings.ReplaceAll(expr, rangeSel, "["+model.Duration(hold/time.Duration(factor)).String()+"]")
	}
	return nil
}

// AlertmanagerOverrides say how AdaptAlertmanagerConfig changes the shipped
// Alertmanager configuration. Zero fields leave the shipped values.
type AlertmanagerOverrides struct {
	// RemediatorURL and CredentialsFile replace the url and bearer token
	// file of the steam-remediator receiver.
	RemediatorURL   string
	CredentialsFile string
	// OperatorsURL, when set, turns the steam-operators receiver into a
	// webhook to this URL in place of the placeholder email.
	OperatorsURL string
	// GroupWait, GroupInterval and RepeatInterval replace the timers of
	// every route that sets them.
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// AdaptAlertmanagerConfig returns config (an alertmanager.yml) changed by o.
// Routing (matchers, group_by, receivers, send_resolved) stays as shipped.
func AdaptAlertmanagerConfig(config []byte, o AlertmanagerOverrides) ([]byte, error) {
	var file yaml.MapSlice
	if err := yaml.Unmarshal(config, &file); err != nil {
		return nil, fmt.Errorf("parsing Alertmanager configuration: %w", err)
	}
	route, ok := lookup(file, "route").(yaml.MapSlice)
	if !ok {
		return nil, errors.New("alertmanager configuration has no route")
	}
	setTimers(route, o)

	receivers, _ := lookup(file, "receivers").([]any)
	found := map[string]bool{}
	for i, r := range receivers {
		receiver, _ := r.(yaml.MapSlice)
		name, _ := lookup(receiver, "name").(string)
		found[name] = true
		switch {
		case name == RemediatorReceiver:
			hooks, _ := lookup(receiver, "webhook_configs").([]any)
			if len(hooks) != 1 {
				return nil, fmt.Errorf("receiver %s: want one webhook_config, have %d", name, len(hooks))
			}
			hook, _ := hooks[0].(yaml.MapSlice)
			if o.RemediatorURL != "" && !replace(hook, "url", o.RemediatorURL) {
				return nil, fmt.Errorf("receiver %s has no url", name)
			}
			auth := lookup(lookup(hook, "http_config"), "authorization")
			if o.CredentialsFile != "" && !replace(auth, "credentials_file", o.CredentialsFile) {
				return nil, fmt.Errorf("receiver %s has no http_config.authorization.credentials_file", name)
			}
		case name == OperatorsReceiver && o.OperatorsURL != "":
			receivers[i] = yaml.MapSlice{
				{Key: "name", Value: name},
				{Key: "webhook_configs", Value: []any{yaml.MapSlice{
					{Key: "url", Value: o.OperatorsURL},
					{Key: "send_resolved", Value: true},
				}}},
			}
		}
	}
	for _, name := range []string{RemediatorReceiver, OperatorsReceiver} {
		if !found[name] {
			return nil, fmt.Errorf("alertmanager configuration has no receiver %s", name)
		}
	}
	return yaml.Marshal(file)
}

func setTimers(route yaml.MapSlice, o AlertmanagerOverrides) {
	for i, item := range route {
		var d time.Duration
		switch item.Key {
		case "group_wait":
			d = o.GroupWait
		case "group_interval":
			d = o.GroupInterval
		case "repeat_interval":
			d = o.RepeatInterval
		case "routes":
			children, _ := item.Value.([]any)
			for _, c := range children {
				if child, ok := c.(yaml.MapSlice); ok {
					setTimers(child, o)
				}
			}
		}
		if d > 0 {
			route[i].Value = model.Duration(d).String()
		}
	}
}

// lookup returns the value of key in m, a yaml.MapSlice, or nil.
func lookup(m any, key string) any {
	ms, _ := m.(yaml.MapSlice)
	for _, item := range ms {
		if item.Key == key {
			return item.Value
		}
	}
	return nil
}

// replace sets the value of key in m, a yaml.MapSlice, in place; the
// slice's elements are shared with the document m was read from. It reports
// whether key was there.
func replace(m any, key string, value any) bool {
	ms, _ := m.(yaml.MapSlice)
	for i, item := range ms {
		if item.Key == key {
			ms[i].Value = value
			return true
		}
	}
	return false
}

// PrometheusOverrides are what a private Prometheus changes in the shipped
// prometheus.yml: where its targets and its Alertmanager listen, and how
// often it scrapes and evaluates. A zero Interval keeps the shipped timings.
type PrometheusOverrides struct {
	ExporterAddr, RemediatorAddr, AlertmanagerAddr string
	Interval                                       time.Duration
}

// intervalLine is a scrape or evaluation interval of prometheus.yml, global
// or per job.
var intervalLine = regexp.MustCompile(`(?m)^(\s*(?:scrape|evaluation)_interval:) *\S+$`)

// AdaptPrometheusConfig returns the shipped prometheus.yml changed by o. The
// shipped file names loopback addresses with the default ports, and those
// are what is replaced; a shipped file that no longer has them is an error,
// so that the demo and the end-to-end tests never silently run another
// configuration than the one operators get. A non-zero o.Interval replaces
// every scrape and evaluation interval, global and per job. The file is
// changed as text: comments, quotes and order stay, so that a test may add
// targets next to the quoted addresses.
func AdaptPrometheusConfig(config []byte, o PrometheusOverrides) ([]byte, error) {
	s := string(config)
	for _, r := range []struct{ old, new string }{
		{`"127.0.0.1:9732"`, `"` + o.ExporterAddr + `"`},
		{`"127.0.0.1:9733"`, `"` + o.RemediatorAddr + `"`},
		{`"127.0.0.1:9093"`, `"` + o.AlertmanagerAddr + `"`},
	} {
		if !strings.Contains(s, r.old) {
			return nil, fmt.Errorf("prometheus.yml no longer contains %s", r.old)
		}
		s = strings.ReplaceAll(s, r.old, r.new)
	}
	if o.Interval <= 0 {
		return []byte(s), nil
	}
	for _, key := range []string{"\n  scrape_interval:", "\n  evaluation_interval:"} {
		if !strings.Contains(s, key) {
			return nil, fmt.Errorf("prometheus.yml has no global%s", strings.TrimPrefix(key, "\n "))
		}
	}
	return []byte(intervalLine.ReplaceAllString(s, "${1} "+model.Duration(o.Interval).String())), nil
}
