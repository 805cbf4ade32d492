// Package status answers, read-only, what an operator asks first when paged.
package status

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/hsperf"
	"github.com/steam-overseer/steam-overseer/internal/observe"
	"github.com/steam-overseer/steam-overseer/internal/printable"
	"github.com/steam-overseer/steam-overseer/internal/probe"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/scorestats"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Row is one deployment's status; scripts read its JSON names.
type Row struct {
	ID            int64      `json:"id"`
	Name          string     `json:"name"`
	Port          int64      `json:"port"`
	PID           int64      `json:"pid"`
	Status        string     `json:"status"` // steam.Statuses or StatusUnresponsive
	Problem       string     `json:"problem"`
	State         string     `json:"state"` // Steam's own
	Error         string     `json:"error"` // why the process could not be read
	Started       *time.Time `json:"started"`
	UptimeSeconds *float64   `json:"uptime_seconds"`
	Restarts      uint64     `json:"restarts"`
	LastAction    *Action    `json:"last_action"`
	Probe         *Probe     `json:"probe"` // from AddProbes, nil when not probed
	// From AddInside: predictions per second are the mean since the JVM
	// started, as one reading has no rate.
	PredictionsPerSecond *float64 `json:"predictions_per_second"`
	HeapUsedBytes        *float64 `json:"heap_used_bytes"`
	HeapMaxBytes         *float64 `json:"heap_max_bytes"`

	uid uint32 // the verified java's, owner of its hsperfdata file
}

// StatusUnresponsive: a verified running java that fails its probe.
const StatusUnresponsive = "unresponsive"

// Probe is a probe's outcome as status shows it.
type Probe struct {
	Success         bool    `json:"success"`
	StatusCode      int     `json:"status_code"`
	DurationSeconds float64 `json:"duration_seconds"`
	Error           string  `json:"error"`
}

// Action is a journal entry as status shows it.
type Action struct {
	Action string    `json:"action"`
	Result string    `json:"result"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// Rows observes every deployment; history comes from AddHistory, so that a
// broken state database never hides the registry.
func Rows(ctx context.Context, reg *steam.Registry, in *procid.Inspector, now time.Time) ([]Row, error) {
	obs, err := observe.New(reg, in).All(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(obs))
	for _, o := range obs {
		d, p := o.Deployment, o.Process
		r := Row{ID: d.ID, Name: d.Name, Port: d.Port, PID: d.PID, Problem: d.Problem, State: d.State, Status: o.Status}
		if o.Running() {
			// The kernel counts 10 ms ticks: milliseconds lose nothing real.
			started := time.UnixMilli(int64(math.Round(p.StartTime * 1e3))).UTC()
			uptime := max(now.Sub(started), 0).Seconds()
			r.Started, r.UptimeSeconds = &started, &uptime
			r.uid = p.UID
		}
		if p.Err != nil {
			r.Error = p.Err.Error()
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// probeConcurrency: a thousand hung deployments cost four timeouts.
const probeConcurrency = 256

// AddProbes probes every running row and marks those failing unresponsive.
func AddProbes(ctx context.Context, rows []Row, path string, timeout time.Duration) {
	var running []*Row
	var ports []int
	for i := range rows {
		if rows[i].Status == string(procid.StatusRunning) {
			running = append(running, &rows[i])
			ports = append(ports, int(rows[i].Port))
		}
	}
	for i, res := range probe.PingAll(ctx, ports, path, timeout, probeConcurrency) {
		r := running[i]
		r.Probe = &Probe{Success: res.Success, StatusCode: res.StatusCode,
			DurationSeconds: res.Duration.Seconds(), Error: res.Reason()}
		if !res.Success {
			r.Status = StatusUnresponsive
		}
	}
}

// AddInside adds what running rows' JVMs say: heap use from their
// hsperfdata under proc, and, for those that answered AddProbes, predictions
// from /stats, each read within timeout. What cannot be read stays nil.
func AddInside(ctx context.Context, rows []Row, proc string, timeout time.Duration) {
	for i := range rows {
		r := &rows[i]
		if r.Started == nil {
			continue
		}
		if nsPID, err := hsperf.NamespacePID(proc, int(r.PID)); err == nil {
			if j, err := hsperf.ReadJVM(proc, int(r.PID), nsPID, r.uid); err == nil {
				r.HeapUsedBytes, r.HeapMaxBytes = &j.Heap.Used, &j.Heap.Max
			}
		}
		if r.Probe == nil || !r.Probe.Success {
			continue
		}
		statsCtx, cancel := context.WithTimeout(ctx, timeout)
		s, err := scorestats.Fetch(statsCtx, scorestats.Client, "http://127.0.0.1:"+strconv.FormatInt(r.Port, 10))
		cancel()
		if err == nil && s.UpTimeMs > 0 {
			perSecond := s.Prediction.Count / (float64(s.UpTimeMs) / 1000)
			r.PredictionsPerSecond = &perSecond
		}
	}
}

// AddHistory adds restart counts and newest journal entries.
func AddHistory(ctx context.Context, rows []Row, st *state.DB) error {
	counts, err := st.RestartCounts(ctx)
	if err != nil {
		return err
	}
	for i := range rows {
		r := &rows[i]
		r.Restarts = counts[r.ID]
		es, err := st.Journal(ctx, r.ID, 1)
		if err != nil {
			return err
		}
		if len(es) > 0 {
			r.LastAction = &Action{Action: es[0].Action, Result: es[0].Result, Reason: es[0].Reason, Time: es[0].Time.UTC()}
		}
	}
	return nil
}

// WriteJSON writes rows as one JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// WriteTable writes rows as aligned columns, times relative to now.
func WriteTable(w io.Writer, rows []Row, now time.Time) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPORT\tPID\tSTATUS\tUPTIME\tRESTARTS\tPRED/S\tHEAP\tLAST ACTION\tNOTE")
	for _, r := range rows {
		uptime := "-"
		if r.UptimeSeconds != nil {
			uptime = formatDuration(time.Duration(*r.UptimeSeconds * float64(time.Second)))
		}
		last := "-"
		if a := r.LastAction; a != nil {
			last = fmt.Sprintf("%s %s %s ago", a.Action, a.Result, formatDuration(now.Sub(a.Time)))
		}
		predictions, heap := "-", "-"
		if r.PredictionsPerSecond != nil {
			predictions = strconv.FormatFloat(*r.PredictionsPerSecond, 'f', 2, 64)
		}
		if r.HeapUsedBytes != nil {
			const mib = 1 << 20
			heap = fmt.Sprintf("%.0f/%.0fMiB", *r.HeapUsedBytes/mib, *r.HeapMaxBytes/mib)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			r.ID, cell(r.Name), r.Port, r.PID, r.Status, uptime, r.Restarts, predictions, heap, last, note(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads even an empty last cell.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// note: the problem, a read or probe failure, a Steam state not started.
func note(r Row) string {
	var parts []string
	if r.Problem != "" {
		parts = append(parts, r.Problem)
	}
	if r.State != steam.StateStarted {
		parts = append(parts, "steam state "+strconv.Quote(r.State))
	}
	if r.Error != "" {
		parts = append(parts, r.Error)
	}
	if r.Probe != nil && !r.Probe.Success {
		parts = append(parts, "probe: "+r.Probe.Error)
	}
	return cell(strings.Join(parts, "; "))
}

func cell(s string) string { return printable.Quote(s) }

// formatDuration prints at most two units, as uptime(1): 3d4h, 5h12m, 12s.
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days, hours, mins, secs := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}
