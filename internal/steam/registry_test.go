package steam_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/demo/steamfixture"
	"github.com/steam-overseer/steam-overseer/internal/procid"
	"github.com/steam-overseer/steam-overseer/internal/steam"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// withPort is a setup that stores value, an SQL literal, as the port of a
// deployment whose war is churn.war.
func withPort(value string) func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
	return func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
		d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn"})
		h.Exec(`UPDATE service SET port = `+value+` WHERE id = ?`, d.ID)
		return d, "churn.war"
	}
}

func TestDeploymentsResolution(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testkit.Options
		// setup adds one deployment and edits it; it returns the war the
		// registry must resolve, relative to the model folder ("" for none).
		setup      func(t *testing.T, h *testkit.Home) (steam.Deployment, string)
		problem    string
		identityOK bool
		port       int64
		pid        int64
	}{
		{
			name: "logical name",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				return h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001}), "churn.war"
			},
			identityOK: true, port: 8001,
		},
		{
			name: "logical name with python preprocessing",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				return h.Add(testkit.Spec{Name: "a", LogicalName: "churn", PyWar: true, Port: 8001}), "churn_py.war"
			},
			identityOK: true, port: 8001,
		},
		{
			name: "logical name with both wars",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
				writeWar(t, h, d.ModelID, "churn_py.war")
				return d, ""
			},
			problem: steam.ProblemWarAmbiguous, identityOK: true, port: 8001,
		},
		{
			name: "logical name whose war is missing",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				return h.Add(testkit.Spec{Name: "a", LogicalName: "churn", NoWar: true, Port: 8001}), ""
			},
			// The war's path is known from the row: a java still running
			// it can be recognised.
			problem: steam.ProblemWarMissing, identityOK: true, port: 8001,
		},
		{
			name: "logical name and another war in the folder",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", NoWar: true, Port: 8001})
				writeWar(t, h, d.ModelID, "other.war")
				return d, ""
			},
			problem: steam.ProblemWarMissing, identityOK: true, port: 8001,
		},
		{
			name: "no logical name, one war",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				return h.Add(testkit.Spec{Name: "b", Port: 8001}), "b.war"
			},
			identityOK: true, port: 8001,
		},
		{
			name: "no logical name, two wars",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "b", Port: 8001})
				writeWar(t, h, d.ModelID, "b_py.war")
				return d, ""
			},
			problem: steam.ProblemWarAmbiguous, port: 8001,
		},
		{
			name: "no logical name, no war",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				return h.Add(testkit.Spec{Name: "b", NoWar: true, Port: 8001}), ""
			},
			problem: steam.ProblemWarMissing, port: 8001,
		},
		{
			// Steam would never write it; a hand edit might. The only war
			// in the folder is not the one it names.
			name: "logical name with a slash",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "sub/churn", NoWar: true, Port: 8001})
				writeWar(t, h, d.ModelID, "churn.war")
				mkdir(t, filepath.Join(h.Home.ModelDir(d.ModelID), "sub"))
				writeWar(t, h, d.ModelID, "sub/churn.war")
				return d, ""
			},
			problem: steam.ProblemLogicalNameInvalid, port: 8001,
		},
		{
			name: "logical name whose war is a folder",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", NoWar: true, Port: 8001})
				mkdir(t, filepath.Join(h.Home.ModelDir(d.ModelID), "churn.war"))
				return d, ""
			},
			problem: steam.ProblemWarMissing, identityOK: true, port: 8001,
		},
		{
			name: "no logical name, a folder named like a war beside the war",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "b", Port: 8001})
				mkdir(t, filepath.Join(h.Home.ModelDir(d.ModelID), "unpacked.war"))
				return d, "b.war"
			},
			identityOK: true, port: 8001,
		},
		{
			name: "no logical name, only a folder named like a war",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "b", NoWar: true, Port: 8001})
				mkdir(t, filepath.Join(h.Home.ModelDir(d.ModelID), "b.war"))
				return d, ""
			},
			problem: steam.ProblemWarMissing, port: 8001,
		},
		{
			name: "no logical name, the war a link to a file",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "b", NoWar: true, Port: 8001})
				mkdir(t, h.Home.ModelDir(d.ModelID))
				target := filepath.Join(t.TempDir(), "b-v2.war")
				if err := os.WriteFile(target, []byte("mode=normal\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				symlink(t, target, filepath.Join(h.Home.ModelDir(d.ModelID), "b.war"))
				return d, "b.war"
			},
			identityOK: true, port: 8001,
		},
		{
			name: "no logical name, a link to a folder named like a war beside the war",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "b", Port: 8001})
				symlink(t, t.TempDir(), filepath.Join(h.Home.ModelDir(d.ModelID), "old.war"))
				return d, "b.war"
			},
			identityOK: true, port: 8001,
		},
		{
			name: "model row gone",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
				h.Exec(`DELETE FROM model WHERE id = ?`, d.ModelID)
				return d, ""
			},
			problem: steam.ProblemModelMissing, port: 8001,
		},
		{name: "port 0", setup: withPort("0"), problem: steam.ProblemPortInvalid, port: 0},
		{name: "port 70000", setup: withPort("70000"), problem: steam.ProblemPortInvalid, port: 70000},
		{name: "port is text", setup: withPort("'eighty'"), problem: steam.ProblemPortInvalid, port: 0},
		{name: "port is text with digits first", setup: withPort("'80a'"), problem: steam.ProblemPortInvalid, port: 0},
		{name: "port is hexadecimal text", setup: withPort("'0x1F41'"), problem: steam.ProblemPortInvalid, port: 0},
		{name: "port is a fraction", setup: withPort("8001.5"), problem: steam.ProblemPortInvalid, port: 0},
		{name: "port is a blob", setup: withPort("x'38303031'"), problem: steam.ProblemPortInvalid, port: 0},
		{name: "port is a whole real", setup: withPort("CAST(8001 AS REAL)"), identityOK: true, port: 8001},
		{
			name: "process_id NULL",
			opts: testkit.Options{Lax: true},
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
				h.Exec(`UPDATE service SET process_id = NULL WHERE id = ?`, d.ID)
				return d, "churn.war"
			},
			identityOK: true, port: 8001, pid: 0,
		},
		{
			name: "process_id negative",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
				h.Exec(`UPDATE service SET process_id = -7 WHERE id = ?`, d.ID)
				return d, "churn.war"
			},
			identityOK: true, port: 8001, pid: -7,
		},
		{
			name: "process_id is text",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
				h.Exec(`UPDATE service SET process_id = 'n/a' WHERE id = ?`, d.ID)
				return d, "churn.war"
			},
			identityOK: true, port: 8001, pid: 0,
		},
		{
			name: "jetty-runner.jar missing",
			setup: func(t *testing.T, h *testkit.Home) (steam.Deployment, string) {
				d := h.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
				if err := os.Remove(h.Home.JettyRunner()); err != nil {
					t.Fatal(err)
				}
				return d, "churn.war"
			},
			problem: steam.ProblemJettyRunnerMissing, identityOK: true, port: 8001,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t, tc.opts)
			// A sound deployment beside the odd one must be unaffected.
			sound := h.Add(testkit.Spec{Name: "sound", LogicalName: "sound"})
			d, war := tc.setup(t, h)
			h.Exec(`UPDATE service SET process_id = 4321 WHERE id = ?`, sound.ID)

			ds, err := steam.NewRegistry(h.Home).Deployments(context.Background())
			if err != nil {
				t.Fatalf("Deployments: %v", err)
			}
			if len(ds) != 2 || ds[0].ID != sound.ID || ds[1].ID != d.ID {
				t.Fatalf("got %d deployments %+v, want ids %d and %d in order", len(ds), ds, sound.ID, d.ID)
			}
			got := ds[1]
			wantWar := ""
			if war != "" {
				wantWar = filepath.Join(h.Home.ModelDir(d.ModelID), war)
			}
			if got.War != wantWar || got.Problem != tc.problem || got.Port != tc.port || got.PID != tc.pid {
				t.Errorf("got war %q problem %q port %d pid %d, want %q %q %d %d",
					got.War, got.Problem, got.Port, got.PID, wantWar, tc.problem, tc.port, tc.pid)
			}
			if _, ok := got.Identity(); ok != tc.identityOK {
				t.Errorf("Identity ok = %v, want %v", ok, tc.identityOK)
			}

			s := ds[0]
			wantSoundProblem := ""
			if tc.problem == steam.ProblemJettyRunnerMissing {
				wantSoundProblem = tc.problem // it is the whole home's
			}
			if s.Name != "sound" || s.PID != 4321 || s.Problem != wantSoundProblem ||
				s.War != filepath.Join(h.Home.ModelDir(s.ModelID), "sound.war") {
				t.Errorf("sound deployment read as %+v", s)
			}
		})
	}
}

func TestDeploymentsFields(t *testing.T) {
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "churn-scorer", LogicalName: "churn", Port: 8123, State: "stopped"})
	h.Exec(`UPDATE service SET process_id = 99 WHERE id = ?`, d.ID)
	got, err := steam.NewRegistry(h.Home).Deployment(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "churn-scorer" || got.ProjectName != "churn" || got.ModelName != "churn-scorer-model" ||
		got.LogicalName != "churn" || got.Address != "127.0.0.1" || got.Port != 8123 || got.PID != 99 ||
		got.State != "stopped" || got.Created == "" || got.IDString() != "1" {
		t.Errorf("read %+v", got)
	}
	id, ok := got.Identity()
	if !ok || id.Port != 8123 || id.JettyRunner != h.Home.JettyRunner() || len(id.Wars) != 2 ||
		id.Wars[0] != got.War || id.Wars[1] != filepath.Join(h.Home.ModelDir(got.ModelID), "churn_py.war") {
		t.Errorf("Identity() = %+v, %v", id, ok)
	}

	_, err = steam.NewRegistry(h.Home).Deployment(context.Background(), d.ID+100)
	if !errors.Is(err, steam.ErrNotFound) {
		t.Errorf("Deployment of a missing id: got %v, want ErrNotFound", err)
	}
}

// TestIDs: every service row counts, whatever its other columns hold (a
// stopped row, one whose model is gone), as Deployments lists them.
func TestIDs(t *testing.T) {
	h := testkit.NewHome(t)
	a := h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
	b := h.Add(testkit.Spec{Name: "b", LogicalName: "b", State: "stopped"})
	c := h.Add(testkit.Spec{Name: "c", LogicalName: "c"})
	h.Exec(`DELETE FROM service WHERE id = ?`, c.ID)
	ids, err := steam.NewRegistry(h.Home).IDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || !ids[a.ID] || !ids[b.ID] {
		t.Errorf("IDs() = %v, want {%d, %d}", ids, a.ID, b.ID)
	}
}

// TestDeploymentsHomeWithGlobMetacharacters: a home's path is a path, not a
// pattern.
func TestDeploymentsHomeWithGlobMetacharacters(t *testing.T) {
	for _, name := range []string{"steam [1.1.6]", "steam*", "steam?", `steam\x`, "steam["} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			mkdir(t, dir)
			f, err := steamfixture.Create(dir, testkit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			logical, err := f.Add(testkit.Spec{Name: "a", LogicalName: "churn", Port: 8001})
			if err != nil {
				t.Fatal(err)
			}
			unnamed, err := f.Add(testkit.Spec{Name: "b", Port: 8002})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				d   steam.Deployment
				war string
			}{
				{logical, "churn.war"},
				{unnamed, "b.war"},
			} {
				want := filepath.Join(dir, "var/master/model", tc.d.IDString(), tc.war)
				if tc.d.War != want || tc.d.Problem != "" {
					t.Errorf("deployment %s: war %q problem %q, want %q", tc.d.Name, tc.d.War, tc.d.Problem, want)
				}
			}
		})
	}
}

// TestDeploymentStatus: a deployment with a problem is misconfigured unless
// its java is verified running; one without is what its process is.
func TestDeploymentStatus(t *testing.T) {
	h := testkit.NewHome(t)
	sound := h.Add(testkit.Spec{Name: "sound", LogicalName: "sound"})
	noWar := h.Add(testkit.Spec{Name: "nowar", LogicalName: "nowar", NoWar: true}) // identity known
	ambiguous := h.Add(testkit.Spec{Name: "ambiguous"})                            // no identity
	writeWar(t, h, ambiguous.ModelID, "other.war")
	ambiguous = h.Deployment(ambiguous.ID)
	if _, ok := ambiguous.Identity(); ok || ambiguous.Problem != steam.ProblemWarAmbiguous {
		t.Fatalf("fixture: %+v", ambiguous)
	}
	for _, tc := range []struct {
		d    steam.Deployment
		p    procid.Status
		want string
	}{
		{sound, procid.StatusRunning, "running"},
		{sound, procid.StatusDead, "dead"},
		{sound, procid.StatusNoPID, "no_pid"},
		{sound, procid.StatusUnknown, "unknown"},
		{noWar, procid.StatusRunning, "running"}, // a war deleted under a running java
		{noWar, procid.StatusDead, steam.StatusMisconfigured},
		{noWar, procid.StatusNoPID, steam.StatusMisconfigured},
		{ambiguous, procid.StatusPIDReused, steam.StatusMisconfigured},
	} {
		t.Run(tc.d.Name+" "+string(tc.p), func(t *testing.T) {
			got := tc.d.Status(procid.Process{Status: tc.p})
			if got != tc.want {
				t.Errorf("Status = %q, want %q", got, tc.want)
			}
			if !slices.Contains(steam.Statuses, got) {
				t.Errorf("Status %q is not one of steam.Statuses %v", got, steam.Statuses)
			}
		})
	}
}

func TestDeploymentsUnreadableDatabase(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, h *testkit.Home)
		want   string
	}{
		{
			name: "missing",
			break_: func(t *testing.T, h *testkit.Home) {
				if err := os.Remove(h.Home.DBPath()); err != nil {
					t.Fatal(err)
				}
			},
			want: "no such file",
		},
		{
			name: "not a database",
			break_: func(t *testing.T, h *testkit.Home) {
				if err := os.WriteFile(h.Home.DBPath(), []byte(strings.Repeat("not sqlite\n", 200)), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "not a database",
		},
		{
			name: "no service table",
			break_: func(t *testing.T, h *testkit.Home) {
				h.Exec(`DROP TABLE service`)
			},
			want: "no such table",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
			tc.break_(t, h)
			before, _ := os.ReadFile(h.Home.DBPath())

			ds, err := steam.NewRegistry(h.Home).Deployments(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Deployments = %v, %v; want an error containing %q", ds, err, tc.want)
			}
			after, _ := os.ReadFile(h.Home.DBPath())
			if string(before) != string(after) {
				t.Error("reading changed (or created) the database file")
			}
		})
	}
}

// lock takes Steam's write lock the way a long Steam transaction would and
// returns the function that releases it.
func lock(t *testing.T, h *testkit.Home) (release func()) {
	t.Helper()
	return h.HoldWriteLock()
}

// within fails the test if f does not return in time: a guard against a
// hang, not a measurement.
func within[T any](t *testing.T, f func() T) T {
	t.Helper()
	c := make(chan T, 1)
	go func() { c <- f() }()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("hung for 30 s")
		panic("unreachable")
	}
}

func TestDeploymentsLocked(t *testing.T) {
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
	reg := steam.NewRegistry(h.Home)
	reg.BusyTimeout = 100 * time.Millisecond

	release := lock(t, h)
	err := within(t, func() error { _, err := reg.Deployments(context.Background()); return err })
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Deployments while Steam holds an exclusive lock: %v, want a 'database is locked' error", err)
	}
	release()
	ds, err := reg.Deployments(context.Background())
	if err != nil || len(ds) != 1 {
		t.Fatalf("Deployments after the lock: %v, %v", ds, err)
	}
}

// row returns every column of a service row, for comparisons.
func row(t *testing.T, h *testkit.Home, id int64) []any {
	t.Helper()
	var r [9]any
	ptrs := make([]any, len(r))
	for i := range r {
		ptrs[i] = &r[i]
	}
	if err := h.DB.QueryRow(`SELECT id, project_id, model_id, name, address, port, process_id, state, created
		FROM service WHERE id = ?`, id).Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return r[:]
}

func sameExceptPID(a, b []any) bool {
	for i := range a {
		if i != 6 && a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSetPID(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        testkit.Options
		storedPID   any // what the row holds before
		state       string
		id          int64
		old, new    int64
		wantErr     error
		wantStored  int64
		lockFor     time.Duration
		ctxDeadline time.Duration
	}{
		{name: "compare-and-set", storedPID: 100, old: 100, new: 200, wantStored: 200},
		{name: "from no PID", storedPID: 0, old: 0, new: 200, wantStored: 200},
		{name: "from NULL", opts: testkit.Options{Lax: true}, storedPID: nil, old: 0, new: 200, wantStored: 200},
		{name: "changed concurrently", storedPID: 150, old: 100, new: 200, wantErr: steam.ErrPIDChanged, wantStored: 150},
		{name: "row gone", storedPID: 100, id: 99, old: 100, new: 200, wantErr: steam.ErrNotFound, wantStored: 100},
		{name: "stopped by Steam", storedPID: 100, state: "stopped", old: 100, new: 200, wantErr: steam.ErrNotStarted, wantStored: 100},
		{name: "waits out a lock", storedPID: 100, old: 100, new: 200, wantStored: 200, lockFor: time.Second},
		{name: "gives up when ctx ends", storedPID: 100, old: 100, new: 200, wantErr: context.DeadlineExceeded,
			wantStored: 100, lockFor: time.Hour, ctxDeadline: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t, tc.opts)
			d := h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
			other := h.Add(testkit.Spec{Name: "b", LogicalName: "b"})
			h.Exec(`UPDATE service SET process_id = ? WHERE id = ?`, tc.storedPID, d.ID)
			if tc.state != "" {
				h.Exec(`UPDATE service SET state = ? WHERE id = ?`, tc.state, d.ID)
			}
			h.Exec(`UPDATE service SET process_id = 100 WHERE id = ?`, other.ID)
			before, otherBefore := row(t, h, d.ID), row(t, h, other.ID)

			reg := steam.NewRegistry(h.Home)
			reg.BusyTimeout = 100 * time.Millisecond
			ctx := context.Background()
			if tc.ctxDeadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxDeadline)
				defer cancel()
			}
			var released atomic.Bool
			release := func() {}
			if tc.lockFor > 0 {
				release = lock(t, h)
				timer := time.AfterFunc(tc.lockFor, func() { released.Store(true); release() })
				defer timer.Stop()
			}
			id := d.ID
			if tc.id != 0 {
				id = tc.id
			}

			err := within(t, func() error { return reg.SetPID(ctx, id, tc.old, tc.new) })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetPID = %v, want %v", err, tc.wantErr)
			}
			if tc.lockFor > 0 && err == nil && !released.Load() {
				t.Fatal("SetPID succeeded while the lock was still held")
			}
			release() // a no-op unless the lock outlived SetPID

			after := row(t, h, d.ID)
			if got, _ := after[6].(int64); got != tc.wantStored {
				t.Errorf("process_id = %v, want %d", after[6], tc.wantStored)
			}
			if !sameExceptPID(before, after) {
				t.Errorf("SetPID changed more than process_id:\n%v\n%v", before, after)
			}
			if otherAfter := row(t, h, other.ID); !sameExceptPID(otherBefore, otherAfter) || otherAfter[6] != otherBefore[6] {
				t.Errorf("SetPID changed another row: %v -> %v", otherBefore, otherAfter)
			}
		})
	}
}

func TestJournalModeUntouched(t *testing.T) {
	h := testkit.NewHome(t)
	d := h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
	reg := steam.NewRegistry(h.Home)
	if _, err := reg.Deployments(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetPID(context.Background(), d.ID, 0, 1234); err != nil {
		t.Fatal(err)
	}
	// A fresh connection reads the mode from the file, not from a
	// connection that may have set it.
	db, err := sql.Open("sqlite", "file:"+h.Home.DBPath()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "delete" {
		t.Errorf("journal_mode = %q, want delete", mode)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(h.Home.DBPath() + suffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", filepath.Base(h.Home.DBPath()+suffix), err)
		}
	}
}

func TestNewHome(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, env, want, wantErr string
	}{
		{name: "flag", dir: dir, want: dir},
		{name: "flag wins over env", dir: dir, env: "/nonexistent", want: dir},
		{name: "env", env: dir, want: dir},
		{name: "relative", dir: ".", want: mustAbs(t, ".")},
		{name: "neither", wantErr: "no Steam home"},
		{name: "missing", dir: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "not a directory", dir: file, wantErr: "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STEAM_HOME", tc.env)
			h, err := steam.NewHome(tc.dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewHome(%q) = %v, %v; want error containing %q", tc.dir, h, err, tc.wantErr)
				}
				return
			}
			if err != nil || h.Dir != tc.want {
				t.Fatalf("NewHome(%q) = %v, %v; want %s", tc.dir, h, err, tc.want)
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func writeWar(t *testing.T, h *testkit.Home, modelID int64, name string) {
	t.Helper()
	if err := h.WriteWar(modelID, name, testkit.Behaviour{}); err != nil {
		t.Fatal(err)
	}
}
