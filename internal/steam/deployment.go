package steam

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/steam-overseer/steam-overseer/internal/procid"
)

// StateStarted is the only service state a deployment may be restarted in.
const StateStarted = "started"

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

	War     string
	Problem string

	home         Home
	modelExists  bool
	acceptedWars []string
}

// IDString is the deployment's id as its metrics label it.
func (d Deployment) IDString() string { return strconv.FormatInt(d.ID, 10) }

// resolve stats two wars per deployment: the halves go side by side, as the
// scrape after it does.
func (r *Registry) resolve(ds []Deployment) {
	_, jettyErr := os.Stat(r.Home.JettyRunner())
	half := len(ds) / 2
	var wg sync.WaitGroup
	wg.Go(func() { r.resolveEach(ds[:half], jettyErr) })
	r.resolveEach(ds[half:], jettyErr)
	wg.Wait()
}

func (r *Registry) resolveEach(ds []Deployment, jettyErr error) {
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

// resolveWar: model/<id>/<logical_name>[_py].war, or the folder's only war.
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
		// Read, not globbed: a path may hold glob metacharacters.
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

func isWar(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// StatusMisconfigured: a Problem, and no verified java running.
const StatusMisconfigured = "misconfigured"

// Statuses lists every value Status returns, procid's first.
var Statuses = func() []string {
	var ss []string
	for _, s := range procid.Statuses {
		ss = append(ss, string(s))
	}
	return append(ss, StatusMisconfigured)
}()

// Status is d's status given p, its recorded PID inspected against d.Identity().
func (d Deployment) Status(p procid.Process) string {
	if p.Status == procid.StatusRunning {
		return string(p.Status)
	}
	if _, ok := d.Identity(); d.Problem != "" || !ok {
		return StatusMisconfigured
	}
	return string(p.Status)
}

// Identity is what this deployment's java must look like; !ok: unrecognisable.
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
