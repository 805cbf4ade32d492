package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/status"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// want is what one deployment's row must say.
type want struct {
	status   string
	problem  string
	running  bool // uptime and start time known
	restarts uint64
	last     string // "action result", "" for none
}

// zombie starts a process that exits at once and is not waited for until
// the test ends, so its PID stays a zombie meanwhile.
func zombie(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	pid := cmd.Process.Pid
	testkit.Eventually(t, 5*time.Second, "a zombie", func() bool {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		// The state follows the parenthesised command name.
		return err == nil && strings.Contains(string(b), ") Z ")
	})
	return pid
}

func TestRows(t *testing.T) {
	testStart := time.Now()
	h := testkit.NewHome(t)
	wants := map[int64]want{}

	running, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	wants[running.ID] = want{status: "running", running: true, restarts: 2, last: "restart success"}

	dead, deadProc := h.Run(testkit.Spec{Name: "fraud", LogicalName: "fraud"})
	testkit.Kill(t, deadProc)
	wants[dead.ID] = want{status: "dead", last: "give_up failure"}

	reused := h.Add(testkit.Spec{Name: "upsell", LogicalName: "upsell"})
	if err := h.SetPID(reused.ID, testkit.StartForeign(t).Pid); err != nil {
		t.Fatal(err)
	}
	wants[reused.ID] = want{status: "pid_reused"}

	noPID := h.Add(testkit.Spec{Name: "pending", LogicalName: "pending"})
	wants[noPID.ID] = want{status: "no_pid"}

	zombied := h.Add(testkit.Spec{Name: "reaper", LogicalName: "reaper"})
	if err := h.SetPID(zombied.ID, zombie(t)); err != nil {
		t.Fatal(err)
	}
	wants[zombied.ID] = want{status: "zombie"}

	noWar := h.Add(testkit.Spec{Name: "nowar", LogicalName: "nowar", NoWar: true})
	wants[noWar.ID] = want{status: steam.StatusMisconfigured, problem: steam.ProblemWarMissing}

	// A live foreign PID on a row that cannot be verified is the row's
	// fault first: fixing the war is what brings it back.
	noWarForeign := h.Add(testkit.Spec{Name: "nowar-foreign", LogicalName: "nowarforeign", NoWar: true})
	if err := h.SetPID(noWarForeign.ID, testkit.StartForeign(t).Pid); err != nil {
		t.Fatal(err)
	}
	wants[noWarForeign.ID] = want{status: steam.StatusMisconfigured, problem: steam.ProblemWarMissing}

	// A war deleted under a java that still serves it: running, and the
	// problem shown all the same.
	orphan, _ := h.Run(testkit.Spec{Name: "orphan", LogicalName: "orphan"})
	if err := os.Remove(orphan.War); err != nil {
		t.Fatal(err)
	}
	wants[orphan.ID] = want{status: "running", problem: steam.ProblemWarMissing, running: true}

	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, e := range []state.Entry{
		{DeploymentID: running.ID, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: running.ID, Action: state.ActionRestart, Result: state.ResultFailure},
		{DeploymentID: running.ID, Action: state.ActionRestart, Result: state.ResultSuccess},
		{DeploymentID: dead.ID, Action: state.ActionRestart, Result: state.ResultFailure},
		{DeploymentID: dead.ID, Action: state.ActionGiveUp, Result: state.ResultFailure, Reason: "5 failed restarts"},
	} {
		e.Time = time.Now().Add(-90 * time.Second)
		if _, err := st.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}

	rows, now := readRows(t, h)
	if err := status.AddHistory(context.Background(), rows, st); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(wants) {
		t.Fatalf("got %d rows, want %d", len(rows), len(wants))
	}

	tableLines, js := render(t, rows, now)
	var objects []map[string]any
	if err := json.Unmarshal(js, &objects); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, js)
	}

	for i, r := range rows {
		w := wants[r.ID]
		t.Run(r.Name, func(t *testing.T) {
			if r.Status != w.status || r.Problem != w.problem || r.Restarts != w.restarts {
				t.Errorf("status %q problem %q restarts %d, want %q %q %d", r.Status, r.Problem, r.Restarts,
					w.status, w.problem, w.restarts)
			}
			if w.running {
				if r.UptimeSeconds == nil || *r.UptimeSeconds < 0 || *r.UptimeSeconds > now.Sub(testStart).Seconds()+2 {
					t.Errorf("uptime %v, want between 0 and the test's age", r.UptimeSeconds)
				}
			} else if r.UptimeSeconds != nil || r.Started != nil {
				t.Errorf("uptime %v, start %v for a process not verified running", r.UptimeSeconds, r.Started)
			}
			var last string
			if r.LastAction != nil {
				last = r.LastAction.Action + " " + r.LastAction.Result
			}
			if last != w.last {
				t.Errorf("last action %q, want %q", last, w.last)
			}

			// The table row, as an operator reads it.
			fields := strings.Fields(tableLines[i+1])
			if len(fields) < 8 || fields[0] != strconv.FormatInt(r.ID, 10) || fields[1] != r.Name || fields[4] != w.status ||
				fields[6] != strconv.FormatUint(w.restarts, 10) {
				t.Errorf("table row %q: want id %d, name %s, status %s, restarts %d", tableLines[i+1], r.ID, r.Name, w.status, w.restarts)
			}
			if (fields[5] != "-") != w.running {
				t.Errorf("table row %q: uptime %q", tableLines[i+1], fields[5])
			}
			if w.last != "" && !strings.Contains(tableLines[i+1], w.last+" 1m30s ago") {
				t.Errorf("table row %q lacks last action %q 1m30s ago", tableLines[i+1], w.last)
			}
			if w.problem != "" && !strings.HasSuffix(tableLines[i+1], w.problem) {
				t.Errorf("table row %q does not show problem %s", tableLines[i+1], w.problem)
			}

			// The JSON object, as a script reads it: every field always there.
			o := objects[i]
			for _, k := range []string{"id", "name", "port", "pid", "status", "problem", "state", "error",
				"started", "uptime_seconds", "restarts", "last_action"} {
				if _, ok := o[k]; !ok {
					t.Errorf("JSON object lacks %q: %v", k, o)
				}
			}
			if o["status"] != w.status || o["id"] != float64(r.ID) || o["pid"] != float64(r.PID) {
				t.Errorf("JSON object %v, want status %s", o, w.status)
			}
		})
	}
}

// render writes rows as a table, returned by line, and as JSON.
func render(t *testing.T, rows []status.Row, now time.Time) (tableLines []string, js []byte) {
	t.Helper()
	var table, buf bytes.Buffer
	if err := status.WriteTable(&table, rows, now); err != nil {
		t.Fatal(err)
	}
	if err := status.WriteJSON(&buf, rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())
	tableLines = strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	if len(tableLines) != len(rows)+1 || !strings.HasPrefix(tableLines[0], "ID ") {
		t.Fatalf("table has %d lines, want a header and %d rows", len(tableLines), len(rows))
	}
	return tableLines, buf.Bytes()
}

// readRows reads the rows of h's deployments, and when.
func readRows(t *testing.T, h *testkit.Home) ([]status.Row, time.Time) {
	t.Helper()
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rows, err := status.Rows(context.Background(), steam.NewRegistry(h.Home), in, now)
	if err != nil {
		t.Fatal(err)
	}
	return rows, now
}

func TestRowsWithoutState(t *testing.T) {
	h := testkit.NewHome(t)
	d, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	rows, _ := readRows(t, h)
	if len(rows) != 1 || rows[0].ID != d.ID || rows[0].Status != "running" || rows[0].Restarts != 0 || rows[0].LastAction != nil {
		t.Errorf("rows = %+v, want deployment %d running, no restarts, no action", rows, d.ID)
	}
}

func TestRowsWithoutRegistry(t *testing.T) {
	in, err := procid.NewInspector("")
	if err != nil {
		t.Fatal(err)
	}
	_, err = status.Rows(context.Background(), steam.NewRegistry(steam.Home{Dir: t.TempDir()}), in, time.Now())
	if err == nil || !strings.Contains(err.Error(), "Steam database") {
		t.Errorf("error = %v, want one about the missing Steam database", err)
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := status.WriteJSON(&b, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(b.String()); got != "[]" {
		t.Errorf("no deployments encode as %q, want []", got)
	}
}
