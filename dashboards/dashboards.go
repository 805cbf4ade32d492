// Package dashboards holds the rules, Alertmanager route, Prometheus
// configuration and Grafana dashboard operators install, embedded so that
// the demo and e2e run exactly what ships, changed only where a run in
// seconds must (hold times, timers, addresses).
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

// Job names of prometheus.yml, which alerts.yml's up-based rules select.
const (
	ExporterJob   = "steam-exporter"
	RemediatorJob = "steam-remediator"
)

const (
	RemediatorReceiver = "steam-remediator"
	OperatorsReceiver  = "steam-operators"
)

// ExpressionHolds are holds written into an alert's expression instead of
// its `for:`: SteamDeploymentUnresponsive counts from the last answer.
var ExpressionHolds = map[string]time.Duration{"SteamDeploymentUnresponsive": 2 * time.Minute}

// ShortenHolds divides every `for:` and ExpressionHolds by factor, keeping
// the order in which alerts fire; nothing else changes.
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

// AlertmanagerOverrides' zero fields keep the shipped values.
type AlertmanagerOverrides struct {
	RemediatorURL   string
	CredentialsFile string
	// OperatorsURL replaces the operators' placeholder email with a webhook.
	OperatorsURL                             string
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// AdaptAlertmanagerConfig keeps routing (matchers, group_by, receivers) as shipped.
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

func lookup(m any, key string) any {
	ms, _ := m.(yaml.MapSlice)
	for _, item := range ms {
		if item.Key == key {
			return item.Value
		}
	}
	return nil
}

// replace edits m in place, shared with the document it was read from.
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

// PrometheusOverrides: a zero Interval keeps the shipped timings.
type PrometheusOverrides struct {
	ExporterAddr, RemediatorAddr, AlertmanagerAddr string
	Interval                                       time.Duration
}

var intervalLine = regexp.MustCompile(`(?m)^(\s*(?:scrape|evaluation)_interval:) *\S+$`)

// AdaptPrometheusConfig replaces the shipped loopback addresses, failing
// when one is missing so that tests never run another configuration than
// operators get. Edited as text: comments and quotes stay, for tests that
// add targets beside them.
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
