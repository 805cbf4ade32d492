package dashboards

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Grafana's dashboard-linter (github.com/grafana/dashboard-linter) cannot be
// installed here; these are its rules, read from its lint/rule_*.go, as they
// apply to this dashboard (templated datasource, job and instance variables,
// reload on time change, uneditable, panel datasource, title and
// description, units, job and instance matchers, $__rate_interval, counters
// only through rate), plus the metric contract.

const (
	dashboardUID  = "steam-overseer"
	datasourceUID = "${datasource}"
)

type dashboardJSON struct {
	UID           string `json:"uid"`
	Editable      bool   `json:"editable"`
	SchemaVersion int    `json:"schemaVersion"`
	Requires      []struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"__requires"`
	Links []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"links"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	Hide       int             `json:"hide"`
	AllValue   string          `json:"allValue"`
	Refresh    int             `json:"refresh"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasourceRef  `json:"datasource"`
}

// queryText returns the variable's query, which Grafana stores either as a
// string or as an object with a query field.
func (v variable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit     string          `json:"unit"`
			Mappings json.RawMessage `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // of a collapsed row
}

type target struct {
	Datasource *datasourceRef `json:"datasource"`
	Expr       string         `json:"expr"`
	RefID      string         `json:"refId"`
}

// parsedDashboard is a dashboard decoded twice: typed, and as raw fields
// for the checks that must tell null from missing.
type parsedDashboard struct {
	dashboardJSON
	raw map[string]json.RawMessage
}

func parseDashboard(data []byte) (*parsedDashboard, error) {
	d := &parsedDashboard{}
	if err := json.Unmarshal(data, &d.dashboardJSON); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &d.raw); err != nil {
		return nil, err
	}
	return d, nil
}

// panels returns every panel that shows data: rows are only headings.
func (d *parsedDashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// query is one PromQL query of the dashboard and where it comes from.
type query struct {
	where string
	expr  string
}

// queries returns every panel target's query and every variable's
// label_values() selector.
func (d *parsedDashboard) queries() []query {
	var qs []query
	for _, p := range d.panels() {
		for _, t := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("panel %q target %s", p.Title, t.RefID), t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if sel, ok := labelValuesSelector(v.queryText()); ok {
			qs = append(qs, query{fmt.Sprintf("variable %s", v.Name), sel})
		}
	}
	return qs
}

// labelValuesSelector returns the series selector of a Grafana
// label_values(selector, label) variable query.
func labelValuesSelector(q string) (string, bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(q), "label_values(")
	if !ok {
		return "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", false
	}
	return strings.TrimSpace(inner[:i]), true
}

// forEachSelector calls f for every selector of every query, and reports
// queries that do not parse.
func (d *parsedDashboard) forEachSelector(f func(q query, s selector) []string) []string {
	var problems []string
	for _, q := range d.queries() {
		sels, err := selectors(q.expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", q.where, err))
			continue
		}
		if len(sels) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no selector in %q", q.where, q.expr))
		}
		for _, s := range sels {
			problems = append(problems, f(q, s)...)
		}
	}
	return problems
}

// grafanaUnits are the units of Grafana's that this dashboard may use (the
// linter knows all of Grafana's).
var grafanaUnits = []string{
	"none", "short", "percent", "percentunit",
	"bytes", "decbytes", "bits",
	"ns", "µs", "ms", "s", "m", "h", "d", "dtdurations", "dateTimeAsIso", "dateTimeFromNow",
	"ops", "reqps", "rps", "cps",
	"bool", "bool_yes_no", "bool_on_off",
}

type lintRule struct {
	name  string
	check func(d *parsedDashboard) []string
}

var dashboardRules = []lintRule{
	{"id is null", func(d *parsedDashboard) []string {
		if raw, ok := d.raw["id"]; !ok || string(raw) != "null" {
			return []string{fmt.Sprintf(`"id" is %s, want null so that Grafana assigns one on import`, raw)}
		}
		return nil
	}},
	{"uid is stable", func(d *parsedDashboard) []string {
		if d.UID != dashboardUID {
			return []string{fmt.Sprintf("uid is %q, want %q (links and provisioning rely on it)", d.UID, dashboardUID)}
		}
		return nil
	}},
	{"one datasource variable", func(d *parsedDashboard) []string {
		var found []variable
		for _, v := range d.Templating.List {
			if v.Type == "datasource" {
				found = append(found, v)
			}
		}
		if len(found) != 1 {
			return []string{fmt.Sprintf("%d datasource variables, want 1", len(found))}
		}
		if v := found[0]; v.Name != "datasource" || v.Label != "Data source" || v.queryText() != "prometheus" {
			return []string{fmt.Sprintf("datasource variable is %s (%q) of %q, want datasource (\"Data source\") of \"prometheus\"", v.Name, v.Label, v.queryText())}
		}
		return nil
	}},
	{"not editable", func(d *parsedDashboard) []string {
		if d.Editable {
			return []string{`"editable" is true, want false: a provisioned dashboard is changed in its file`}
		}
		return nil
	}},
	// The linter's template-job and template-instance rules: an "All" of
	// a multi-value variable must match every value, also ones that appear
	// after the variable was loaded, so allValue is a regex, not a list.
	{"job and instance variables are multi-value with allValue .+", func(d *parsedDashboard) []string {
		var problems []string
		for _, name := range []string{"job", "instance"} {
			for _, v := range d.Templating.List {
				if v.Name != name {
					continue
				}
				if label := strings.ToUpper(name[:1]) + name[1:]; v.Label != label {
					problems = append(problems, fmt.Sprintf("variable %s is labeled %q, want %q", name, v.Label, label))
				}
				if !v.Multi {
					problems = append(problems, fmt.Sprintf("variable %s is not multi-value", name))
				}
				if v.AllValue != ".+" {
					problems = append(problems, fmt.Sprintf("variable %s has allValue %q, want \".+\"", name, v.AllValue))
				}
			}
		}
		return problems
	}},
	{"query variables reload on time range change", func(d *parsedDashboard) []string {
		var problems []string
		for _, v := range d.Templating.List {
			if v.Type == "query" && v.Refresh != 2 {
				problems = append(problems, fmt.Sprintf("variable %s has refresh %d, want 2 (on time range change)", v.Name, v.Refresh))
			}
		}
		return problems
	}},
	{"job, Steam host, instance and deployment variables", func(d *parsedDashboard) []string {
		want := map[string][]string{
			"job":        nil,
			"steam_host": {"$job"},
			"instance":   {"$job", "$steam_host"},
			"deployment": {"$job", "$steam_host", "$instance"},
		}
		var problems []string
		for _, v := range d.Templating.List {
			deps, ok := want[v.Name]
			if !ok {
				continue
			}
			delete(want, v.Name)
			q := v.queryText()
			if v.Type != "query" || !strings.HasPrefix(q, "label_values(") {
				problems = append(problems, fmt.Sprintf("variable %s is %s %q, want a label_values() query", v.Name, v.Type, q))
			}
			for _, dep := range deps {
				if !strings.Contains(q, dep) {
					problems = append(problems, fmt.Sprintf("variable %s's query %q is not filtered by %s", v.Name, q, dep))
				}
			}
		}
		for name := range want {
			problems = append(problems, fmt.Sprintf("no variable %s", name))
		}
		return problems
	}},
	// Issue 19: the instance variable mixes exporters and remediators, so
	// choosing one host's exporter emptied the remediation row. steam_host
	// (prometheus.yml) is the same on a host's exporter and remediator.
	{"a Steam host variable selects a host's exporter and remediator together", func(d *parsedDashboard) []string {
		var problems []string
		seen := false
		for _, v := range d.Templating.List {
			switch v.Name {
			case "steam_host":
				seen = true
				q := v.queryText()
				if v.Label != "Steam host" || !v.Multi || !v.IncludeAll || v.Hide != 0 {
					problems = append(problems, fmt.Sprintf("variable steam_host: label %q multi %v includeAll %v hide %d, want a visible multi-value \"Steam host\" with All", v.Label, v.Multi, v.IncludeAll, v.Hide))
				}
				// .* also matches series of a Prometheus without the relabeling.
				if v.AllValue != ".*" {
					problems = append(problems, fmt.Sprintf("variable steam_host has allValue %q, want \".*\"", v.AllValue))
				}
				for _, m := range []string{"steam_exporter_build_info", "steam_remediator_build_info"} {
					if !strings.Contains(q, m) || !strings.HasSuffix(q, ", steam_host)") {
						problems = append(problems, fmt.Sprintf("variable steam_host's query %q does not list the steam_host of %s", q, m))
					}
				}
			case "instance":
				if v.Hide != 2 {
					problems = append(problems, fmt.Sprintf("variable instance has hide %d, want 2: choosing one instance hides the other half of its host", v.Hide))
				}
			}
		}
		if !seen {
			problems = append(problems, "no variable steam_host")
		}
		return problems
	}},
	{"runbook link and minimum Grafana version", func(d *parsedDashboard) []string {
		var problems []string
		runbook := strings.TrimSuffix(runbookBase, "#")
		if !slices.ContainsFunc(d.Links, func(l struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		}) bool {
			return l.Type == "link" && l.URL == runbook
		}) {
			problems = append(problems, fmt.Sprintf("no dashboard link to %s", runbook))
		}
		// The Grafana release that introduced the dashboard's schemaVersion.
		minGrafana := map[int]string{39: "10.3.0"}[d.SchemaVersion]
		found := false
		for _, r := range d.Requires {
			if r.Type == "grafana" && r.ID == "grafana" {
				found = true
				if minGrafana == "" || r.Version != minGrafana {
					problems = append(problems, fmt.Sprintf("__requires Grafana %q for schemaVersion %d, want %q", r.Version, d.SchemaVersion, minGrafana))
				}
			}
		}
		if !found {
			problems = append(problems, "no __requires entry stating the minimum Grafana version")
		}
		return problems
	}},
	{"every panel, target and variable uses the datasource variable", func(d *parsedDashboard) []string {
		var problems []string
		check := func(where string, ds *datasourceRef) {
			if ds == nil || ds.UID != datasourceUID || ds.Type != "prometheus" {
				problems = append(problems, fmt.Sprintf("%s: datasource %+v, want prometheus %s", where, ds, datasourceUID))
			}
		}
		for _, p := range d.panels() {
			check(fmt.Sprintf("panel %q", p.Title), p.Datasource)
			for _, t := range p.Targets {
				check(fmt.Sprintf("panel %q target %s", p.Title, t.RefID), t.Datasource)
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check("variable "+v.Name, v.Datasource)
			}
		}
		return problems
	}},
	{"unit and description on every panel", func(d *parsedDashboard) []string {
		var problems []string
		for _, p := range d.panels() {
			// As the linter: a panel whose values are mapped to text needs
			// no unit; any other needs one Grafana knows.
			if unit := p.FieldConfig.Defaults.Unit; !slices.Contains(grafanaUnits, unit) &&
				(len(p.FieldConfig.Defaults.Mappings) == 0 || string(p.FieldConfig.Defaults.Mappings) == "[]") {
				problems = append(problems, fmt.Sprintf("panel %q has no unit Grafana knows: %q", p.Title, unit))
			}
			if strings.TrimSpace(p.Description) == "" {
				problems = append(problems, fmt.Sprintf("panel %q has no description", p.Title))
			}
		}
		return problems
	}},
	{"panels have unique ids and queries", func(d *parsedDashboard) []string {
		var problems []string
		seen := map[int]string{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if other, ok := seen[p.ID]; ok {
					problems = append(problems, fmt.Sprintf("panels %q and %q share id %d", other, p.Title, p.ID))
				}
				seen[p.ID] = p.Title
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		for _, p := range d.panels() {
			if len(p.Targets) == 0 {
				problems = append(problems, fmt.Sprintf("panel %q has no query", p.Title))
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					problems = append(problems, fmt.Sprintf("panel %q target %s is empty", p.Title, t.RefID))
				}
			}
		}
		return problems
	}},
	{"every metric is in the contract", func(d *parsedDashboard) []string {
		return d.forEachSelector(func(q query, s selector) []string {
			var problems []string
			names := s.metricNames()
			if len(names) == 0 {
				return []string{fmt.Sprintf("%s: selector %s names no metric", q.where, s)}
			}
			for _, name := range names {
				m, ok := lookupMetric(name)
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: unknown metric %s", q.where, name))
					continue
				}
				for _, mt := range s.matchers {
					if !m.hasLabel(mt.label) {
						problems = append(problems, fmt.Sprintf("%s: %s has no label %s", q.where, name, mt.label))
					}
				}
			}
			return problems
		})
	}},
	// Variables are filtered by the variables before them (checked above).
	{"job, instance and deployment matchers in every query", func(d *parsedDashboard) []string {
		return d.forEachSelector(func(q query, s selector) []string {
			if strings.HasPrefix(q.where, "variable ") {
				return nil
			}
			want := []string{"job", "steam_host", "instance"}
			for _, name := range s.metricNames() {
				if m, ok := lookupMetric(name); ok && m.hasLabel("deployment") {
					want = append(want, "deployment")
					break
				}
			}
			var problems []string
			for _, label := range want {
				m, ok := s.matcher(label)
				if !ok || m.op != "=~" || m.value != "$"+label {
					problems = append(problems, fmt.Sprintf("%s: %s lacks %s=~\"$%s\"", q.where, s, label, label))
				}
			}
			return problems
		})
	}},
	// A panel that counts deployments as down must count what
	// SteamDeploymentDown fires for: only rows Steam wants started.
	{"down panels agree with SteamDeploymentDown", func(d *parsedDashboard) []string {
		var problems []string
		for _, p := range d.panels() {
			if !strings.Contains(strings.ToLower(p.Title), "down") || len(p.Targets) == 0 {
				continue
			}
			sels, err := selectors(p.Targets[0].Expr)
			if err != nil {
				continue // reported by the contract rule
			}
			started := false
			for _, s := range sels {
				m, ok := s.matcher("state")
				started = started || s.metric == "steam_deployment_info" && ok && m.op == "=" && m.value == "started"
			}
			if !started {
				problems = append(problems, fmt.Sprintf(`panel %q counts deployments without steam_deployment_info{state="started"}: it would show as down what Steam stopped`, p.Title))
			}
		}
		return problems
	}},
	{"$__rate_interval in every rate and increase", func(d *parsedDashboard) []string {
		return d.forEachSelector(func(q query, s selector) []string {
			if s.rng != "" && s.rng != "$__rate_interval" {
				return []string{fmt.Sprintf("%s: %s(%s) uses [%s], want [$__rate_interval]", q.where, s.fn, s, s.rng)}
			}
			if (s.fn == "rate" || s.fn == "increase" || s.fn == "irate") && s.rng == "" {
				return []string{fmt.Sprintf("%s: %s(%s) without a range", q.where, s.fn, s)}
			}
			return nil
		})
	}},
	// increase() extrapolates to the window's edges: three restarts read
	// as 3.05. A count is shown as a whole number.
	{"counts from increase() are rounded", func(d *parsedDashboard) []string {
		var problems []string
		for _, p := range d.panels() {
			for _, t := range p.Targets {
				if strings.Contains(t.Expr, "increase(") && !strings.HasPrefix(strings.TrimSpace(t.Expr), "round(") {
					problems = append(problems, fmt.Sprintf("panel %q target %s: increase() not inside round(): %s", p.Title, t.RefID, t.Expr))
				}
			}
		}
		return problems
	}},
	// Issue 19: a deployment is named wherever it is shown. A metric with
	// deployment_id but no deployment label takes the name from
	// steam_deployment_info.
	{"deployments are named, not only numbered", func(d *parsedDashboard) []string {
		return d.forEachSelector(func(q query, s selector) []string {
			for _, name := range s.metricNames() {
				m, ok := lookupMetric(name)
				if !ok || !slices.Contains(m.labels, "deployment_id") || m.hasLabel("deployment") || strings.HasPrefix(q.where, "variable ") {
					continue
				}
				for _, p := range d.panels() {
					for _, t := range p.Targets {
						if fmt.Sprintf("panel %q target %s", p.Title, t.RefID) == q.where &&
							(!strings.Contains(t.Expr, "group_left (deployment)") || !strings.Contains(t.Expr, "steam_deployment_info{")) {
							return []string{fmt.Sprintf("%s: %s has only deployment_id; join steam_deployment_info with group_left (deployment)", q.where, name)}
						}
					}
				}
			}
			return nil
		})
	}},
	{"no counter without rate or increase", func(d *parsedDashboard) []string {
		return d.forEachSelector(func(q query, s selector) []string {
			return counterProblems(q.where, s)
		})
	}},
}

// counterProblems reports a counter (a *_total, or a histogram's series)
// read other than through rate() or increase(): its raw value only says how
// long the process has run.
func counterProblems(where string, s selector) []string {
	var problems []string
	for _, name := range s.metricNames() {
		m, _ := lookupMetric(name)
		isCounter := m.kind == counter || strings.HasSuffix(name, "_total")
		if isCounter && s.fn != "rate" && s.fn != "increase" && s.fn != "irate" {
			problems = append(problems, fmt.Sprintf("%s: counter %s is not inside rate() or increase()", where, s))
		}
	}
	return problems
}

func TestDashboard(t *testing.T) {
	d, err := parseDashboard(Dashboard)
	if err != nil {
		t.Fatalf("steam-overseer.json: %v", err)
	}
	if len(d.panels()) == 0 || len(d.queries()) == 0 {
		t.Fatal("steam-overseer.json has no panels or no queries")
	}
	for _, r := range dashboardRules {
		t.Run(r.name, func(t *testing.T) {
			for _, p := range r.check(d) {
				t.Error(p)
			}
		})
	}
}

// TestDashboardLintCatches breaks the shipped dashboard one way at a time
// and checks that the rule meant to catch it does: a linter that passes
// everything would pass TestDashboard too.
func TestDashboardLintCatches(t *testing.T) {
	firstTarget := func(d map[string]any) map[string]any {
		for _, p := range d["panels"].([]any) {
			if ts, ok := p.(map[string]any)["targets"].([]any); ok && len(ts) > 0 {
				return ts[0].(map[string]any)
			}
		}
		t.Fatal("no target")
		return nil
	}
	firstPanel := func(d map[string]any) map[string]any {
		for _, p := range d["panels"].([]any) {
			if p.(map[string]any)["type"] != "row" {
				return p.(map[string]any)
			}
		}
		t.Fatal("no panel")
		return nil
	}
	setExpr := func(expr string) func(map[string]any) {
		return func(d map[string]any) { firstTarget(d)["expr"] = expr }
	}
	variables := func(d map[string]any) []any { return d["templating"].(map[string]any)["list"].([]any) }
	variable := func(d map[string]any, name string) map[string]any {
		for _, v := range variables(d) {
			if v.(map[string]any)["name"] == name {
				return v.(map[string]any)
			}
		}
		t.Fatalf("no variable %s", name)
		return nil
	}
	panelTitled := func(d map[string]any, title string) map[string]any {
		var found map[string]any
		var walk func([]any)
		walk = func(ps []any) {
			for _, p := range ps {
				pm := p.(map[string]any)
				if pm["title"] == title && pm["type"] != "row" {
					found = pm
				}
				if sub, ok := pm["panels"].([]any); ok {
					walk(sub)
				}
			}
		}
		walk(d["panels"].([]any))
		if found == nil {
			t.Fatalf("no panel %q", title)
		}
		return found
	}
	setPanelExpr := func(title, expr string) func(map[string]any) {
		return func(d map[string]any) {
			panelTitled(d, title)["targets"].([]any)[0].(map[string]any)["expr"] = expr
		}
	}
	for _, tc := range []struct {
		name   string
		rule   string
		mutate func(d map[string]any)
	}{
		{"id set", "id is null", func(d map[string]any) { d["id"] = 7 }},
		{"id missing", "id is null", func(d map[string]any) { delete(d, "id") }},
		{"uid changed", "uid is stable", func(d map[string]any) { d["uid"] = "abc123" }},
		{"datasource variable removed", "one datasource variable", func(d map[string]any) {
			d["templating"].(map[string]any)["list"] = variables(d)[1:]
		}},
		{"deployment variable unfiltered", "job, Steam host, instance and deployment variables", func(d map[string]any) {
			variable(d, "deployment")["query"] = `label_values(steam_deployment_info, deployment)`
		}},
		{"target with a ${DS_PROMETHEUS} input", "every panel, target and variable uses the datasource variable", func(d map[string]any) {
			firstTarget(d)["datasource"] = map[string]any{"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
		}},
		{"panel without datasource", "every panel, target and variable uses the datasource variable", func(d map[string]any) {
			delete(firstPanel(d), "datasource")
		}},
		{"unit empty", "unit and description on every panel", func(d map[string]any) {
			firstPanel(d)["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["unit"] = ""
		}},
		{"unit Grafana does not know", "unit and description on every panel", func(d map[string]any) {
			firstPanel(d)["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["unit"] = "seconds"
		}},
		{"down counts what Steam stopped", "down panels agree with SteamDeploymentDown", func(d map[string]any) {
			firstTarget(d)["expr"] = `sum(1 - steam_deployment_up{job=~"$job", instance=~"$instance", deployment=~"$deployment"})`
		}},
		{"editable", "not editable", func(d map[string]any) { d["editable"] = true }},
		{"datasource variable mislabeled", "one datasource variable", func(d map[string]any) {
			variable(d, "datasource")["label"] = "Prometheus"
		}},
		{"job allValue missing", "job and instance variables are multi-value with allValue .+", func(d map[string]any) {
			delete(variable(d, "job"), "allValue")
		}},
		{"instance single-value", "job and instance variables are multi-value with allValue .+", func(d map[string]any) {
			variable(d, "instance")["multi"] = false
		}},
		{"job mislabeled", "job and instance variables are multi-value with allValue .+", func(d map[string]any) {
			variable(d, "job")["label"] = "Prometheus job"
		}},
		{"variable refreshed on load only", "query variables reload on time range change", func(d map[string]any) {
			variable(d, "deployment")["refresh"] = 1
		}},
		{"description missing", "unit and description on every panel", func(d map[string]any) { delete(firstPanel(d), "description") }},
		{"duplicate panel id", "panels have unique ids and queries", func(d map[string]any) { firstPanel(d)["id"] = 1 }},
		{"misspelt metric", "every metric is in the contract", setExpr(`steam_deployment_upp{job=~"$job", instance=~"$instance", deployment=~"$deployment"}`)},
		{"label the metric lacks", "every metric is in the contract", setExpr(`steam_remediator_queue_length{job=~"$job", instance=~"$instance", deployment=~"$deployment"}`)},
		{"instance matcher missing", "job, instance and deployment matchers in every query", setExpr(`sum(steam_deployment_up{job=~"$job", deployment=~"$deployment"})`)},
		{"deployment matcher missing", "job, instance and deployment matchers in every query", setExpr(`sum(steam_deployment_up{job=~"$job", instance=~"$instance"})`)},
		{"job hard-coded", "job, instance and deployment matchers in every query", setExpr(`up{job="steam-exporter", instance=~"$instance"}`)},
		{"fixed rate range", "$__rate_interval in every rate and increase", setExpr(`rate(steam_remediator_alerts_total{job=~"$job", instance=~"$instance"}[5m])`)},
		{"steam_host variable removed", "a Steam host variable selects a host's exporter and remediator together", func(d map[string]any) {
			variable(d, "steam_host")["name"] = "host"
		}},
		{"steam_host All misses unlabelled series", "a Steam host variable selects a host's exporter and remediator together", func(d map[string]any) {
			variable(d, "steam_host")["allValue"] = ".+"
		}},
		{"steam_host of the exporter only", "a Steam host variable selects a host's exporter and remediator together", func(d map[string]any) {
			variable(d, "steam_host")["query"] = `label_values(steam_exporter_build_info{job=~"$job"}, steam_host)`
		}},
		{"instance shown", "a Steam host variable selects a host's exporter and remediator together", func(d map[string]any) {
			variable(d, "instance")["hide"] = 0
		}},
		{"instance not filtered by host", "job, Steam host, instance and deployment variables", func(d map[string]any) {
			variable(d, "instance")["query"] = `label_values({__name__=~"steam_exporter_build_info|steam_remediator_build_info", job=~"$job"}, instance)`
		}},
		{"steam_host matcher missing", "job, instance and deployment matchers in every query", setExpr(`sum(steam_deployment_up{job=~"$job", instance=~"$instance", deployment=~"$deployment"})`)},
		{"no runbook link", "runbook link and minimum Grafana version", func(d map[string]any) { d["links"] = []any{} }},
		{"no minimum Grafana version", "runbook link and minimum Grafana version", func(d map[string]any) { delete(d, "__requires") }},
		{"schemaVersion newer than the stated Grafana", "runbook link and minimum Grafana version", func(d map[string]any) { d["schemaVersion"] = 41 }},
		{"restarts not rounded", "counts from increase() are rounded", setPanelExpr("Restarts",
			`sum by (instance, deployment) (increase(steam_deployment_restarts_total{job=~"$job", steam_host=~"$steam_host", instance=~"$instance", deployment=~"$deployment"}[$__rate_interval]))`)},
		{"given up by id only", "deployments are named, not only numbered", setPanelExpr("Deployments given up",
			`steam_remediator_deployment_gave_up{job=~"$job", steam_host=~"$steam_host", instance=~"$instance"}`)},
		{"raw counter", "no counter without rate or increase", setExpr(`steam_remediator_alerts_total{job=~"$job", instance=~"$instance"}`)},
		{"raw histogram count", "no counter without rate or increase", setExpr(`sum(steam_remediator_restart_duration_seconds_count{job=~"$job", instance=~"$instance"})`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(Dashboard, &d); err != nil {
				t.Fatal(err)
			}
			tc.mutate(d)
			broken, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			pd, err := parseDashboard(broken)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range dashboardRules {
				if r.name == tc.rule {
					if problems := r.check(pd); len(problems) == 0 {
						t.Errorf("rule %q found nothing wrong", tc.rule)
					}
					return
				}
			}
			t.Fatalf("no rule %q", tc.rule)
		})
	}
}
