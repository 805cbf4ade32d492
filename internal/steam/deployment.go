package steam

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/steam-overseer/steam-overseer/internal/procid"
)

// StateStarted is the service state of a deployment Steam considers running.
// A row in any other state is not ours to restart.
const StateStarted = "started"

// Problems that make a deployment impossible to verify or start. They are
// reported, never guessed around.
const (
	ProblemModelMissing       = "model_missing"        // the service row's model row is gone
	ProblemPortInvalid        = "port_invalid"         // port ≤ 0 or > 65535
	ProblemWarMissing         = "war_missing"          // no war where Steam puts it
	ProblemWarAmbiguous       = "war_ambiguous"        // no logical name and several wars
	ProblemJettyRunnerMissing = "jetty_runner_missing" // var/master/assets/jetty-runner.jar is gone
	ProblemLogicalNameInvalid = "logical_name_invalid" // the model's logical name holds a "/"
)

// Deployment is one row of Steam's service table with what it refers to.
type Deployment struct {
	ID          int64
	Name        string
	ProjectID   int64
	ProjectName string
	ModelID     int64
	ModelName   string
	LogicalName string
	Address     string
	Port        int64
	PID         int64 // process_id as Steam recorded it; 0 when NULL
	State       string
	Created     string

	// War is the scoring service this deployment runs, resolved exactly as
	// Steam lays it out; empty when it cannot be resolved.
	War string
	// Problem says why the deployment cannot be verified or started; empty
	// when it can.
	Problem string

	home        Home
	modelExists bool
	// acceptedWars are the war paths this deployment's java may run. They are
	// known from the row even when the file is missing on disk: a java that
	// is still running proves its identity all the same.
	acceptedWars []string
}

// IDString is the deployment's id as its metrics label it.
func (d Deployment) IDString() string { return strconv.FormatInt(d.ID, 10) }

// resolve fills in War, Problem and the identity each deployment is checked
// against. jetty-runner.jar is looked up once for all of them.
func (r *Registry) resolve(ds []Deployment) {
	_, jettyErr := os.Stat(r.Home.JettyRunner())
	for i := range ds {
		d := &ds[i]
		d.home = r.Home
		d.resolveWar()
		switch {
		case d.Problem != "":
		case d.Port <= 0 || d.Port > 65535:
			d.Problem = ProblemPortInvalid
		case jettyErr != nil:
			d.Problem = ProblemJettyRunnerMissing
		}
	}
}

// resolveWar applies Steam's layout: model/<model_id>/<logical_name>.war, or
// <logical_name>_py.war for a model with Python preprocessing. Without a
// logical name, a folder holding exactly one war names it. A logical name
// that is not a plain file name is reported, never guessed around: it cannot
// name a war in the folder.
func (d *Deployment) resolveWar() {
	dir := d.home.ModelDir(d.ModelID)
	if !d.modelExists {
		d.Problem = ProblemModelMissing
		return
	}
	if strings.ContainsRune(d.LogicalName, '/') {
		d.Problem = ProblemLogicalNameInvalid
		return
	}
	var found []string
	if d.LogicalName != "" {
		d.acceptedWars = []string{
			filepath.Join(dir, d.LogicalName+".war"),
			filepath.Join(dir, d.LogicalName+"_py.war"),
		}
		for _, w := range d.acceptedWars {
			if isWar(w) {
				found = append(found, w)
			}
		}
	} else {
		// Read, not globbed: a home's path may hold glob metacharacters.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if w := filepath.Join(dir, e.Name()); strings.HasSuffix(e.Name(), ".war") && isWar(w) {
				found = append(found, w)
			}
		}
		if len(found) == 1 {
			d.acceptedWars = found
		}
	}
	switch len(found) {
	case 1:
		d.War = found[0]
	case 0:
		d.Problem = ProblemWarMissing
	default:
		d.Problem = ProblemWarAmbiguous
	}
}

// isWar reports whether path is a war file: a regular file, also when it is
// reached through a symbolic link, and never a folder that happens to be
// named x.war.
func isWar(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// StatusMisconfigured is the status of a deployment that has a Problem and
// whose java is not verified running: what needs fixing is the row or the
// files, not the process. It joins procid's statuses.
const StatusMisconfigured = "misconfigured"

// Statuses lists every value Status returns, procid's first.
var Statuses = func() []string {
	var ss []string
	for _, s := range procid.Statuses {
		ss = append(ss, string(s))
	}
	return append(ss, StatusMisconfigured)
}()

// Status is what became of d, given p, its recorded PID inspected against
// d.Identity(): p's status, or StatusMisconfigured when d has a problem (or
// no identity) and p is not verified running. The exporter, the status
// command and the demo all say it this way.
func (d Deployment) Status(p procid.Process) string {
	if p.Status == procid.StatusRunning {
		return string(p.Status)
	}
	if _, ok := d.Identity(); d.Problem != "" || !ok {
		return StatusMisconfigured
	}
	return string(p.Status)
}

// Identity is what this deployment's java process must look like. ok is false
// when the row does not say enough to recognise it (no model, bad port, wars
// that cannot be told apart): such a deployment is never verified, so nothing
// is ever signalled or adopted on its behalf.
func (d Deployment) Identity() (id procid.Identity, ok bool) {
	if len(d.acceptedWars) == 0 || d.Port <= 0 || d.Port > 65535 {
		return procid.Identity{}, false
	}
	return procid.Identity{
		JettyRunner: d.home.JettyRunner(),
		Port:        int(d.Port),
		Wars:        d.acceptedWars,
	}, true
}
