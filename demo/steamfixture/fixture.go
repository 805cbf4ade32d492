// Package steamfixture builds throwaway Steam homes (real schema, layout,
// fake wars, Steam's argv) for the tests and the demo alike.
package steamfixture

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	steamoverseer "github.com/steam-overseer/steam-overseer"
	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// Fixture is a Steam home under construction.
type Fixture struct {
	Home      steam.Home
	DB        *sql.DB
	projectID int64
}

// Options change how the home is built.
type Options struct {
	// Lax drops the service table's NOT NULL, for odd rows (a NULL process_id).
	Lax bool
}

// Create builds a Steam home in dir (which must exist).
func Create(dir string, opts Options) (*Fixture, error) {
	home := steam.Home{Dir: dir}
	for _, d := range []string{filepath.Dir(home.DBPath()), filepath.Dir(home.JettyRunner()), home.LogDir(),
		filepath.Join(home.MasterDir(), "model")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	// The fake java never reads the runner.
	if err := os.WriteFile(home.JettyRunner(), []byte("fake jetty-runner\n"), 0o644); err != nil {
		return nil, fmt.Errorf("writing jetty-runner.jar: %w", err)
	}
	db, err := sqlitefile.Open(home.DBPath(), sqlitefile.Options{Mode: sqlitefile.ReadWriteCreate, BusyTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("creating steam.db: %w", err)
	}
	schema := steamoverseer.SteamSchema
	if opts.Lax {
		schema = strings.NewReplacer(
			"process_id integer NOT NULL", "process_id integer",
			"port integer NOT NULL", "port integer",
		).Replace(schema)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating Steam schema: %w", err)
	}
	res, err := db.Exec(`INSERT INTO project (name, description, model_category, created)
		VALUES ('churn', 'Customer churn', 'Binomial', datetime('now'))`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("inserting project: %w", err)
	}
	pid, _ := res.LastInsertId()
	return &Fixture{Home: home, DB: db, projectID: pid}, nil
}

// Close closes the fixture's database connection.
func (f *Fixture) Close() error { return f.DB.Close() }

// Spec describes one deployment to add.
type Spec struct {
	Name        string
	LogicalName string // "" leaves the column NULL
	// Port 0 picks a free one.
	Port      int
	State     string
	Behaviour fakescorer.Behaviour
	PyWar     bool
	NoWar     bool
}

// Add inserts a model, a service row (process_id 0) and its war.
func (f *Fixture) Add(s Spec) (steam.Deployment, error) {
	if s.Port == 0 {
		port, err := FreePort()
		if err != nil {
			return steam.Deployment{}, err
		}
		s.Port = port
	}
	if s.State == "" {
		s.State = steam.StateStarted
	}
	var logical any
	if s.LogicalName != "" {
		logical = s.LogicalName
	}
	res, err := f.DB.Exec(`INSERT INTO model (project_id, training_dataset_id, name, cluster_name,
		model_key, algorithm, model_category, dataset_name, response_column_name, logical_name,
		location, metrics, metrics_version, created)
		VALUES (?, 1, ?, 'h2o', ?, 'gbm', 'Binomial', 'churn.csv', 'churned', ?, '', '{}', '1', datetime('now'))`,
		f.projectID, s.Name+"-model", s.Name+"-key", logical)
	if err != nil {
		return steam.Deployment{}, fmt.Errorf("inserting model of %s: %w", s.Name, err)
	}
	modelID, _ := res.LastInsertId()
	if !s.NoWar {
		name := s.LogicalName
		if name == "" {
			name = s.Name
		}
		if s.PyWar {
			name += "_py"
		}
		if err := f.WriteWar(modelID, name+".war", s.Behaviour); err != nil {
			return steam.Deployment{}, err
		}
	}
	res, err = f.DB.Exec(`INSERT INTO service (project_id, model_id, name, address, port, process_id, state, created)
		VALUES (?, ?, ?, '127.0.0.1', ?, 0, ?, datetime('now'))`, f.projectID, modelID, s.Name, s.Port, s.State)
	if err != nil {
		return steam.Deployment{}, fmt.Errorf("inserting service %s: %w", s.Name, err)
	}
	id, _ := res.LastInsertId()
	return steam.NewRegistry(f.Home).Deployment(context.Background(), id)
}

func (f *Fixture) WriteWar(modelID int64, name string, b fakescorer.Behaviour) error {
	dir := f.Home.ModelDir(modelID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating model folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.WarContent()), 0o644); err != nil {
		return fmt.Errorf("writing war %s: %w", name, err)
	}
	return nil
}

// Command has java at javaPath but argv[0] "java", as Steam's PATH exec.
func (f *Fixture) Command(javaPath string, d steam.Deployment) *exec.Cmd {
	cmd := exec.Command(javaPath, "-jar", f.Home.JettyRunner(), "--port", fmt.Sprint(d.Port), d.War)
	cmd.Args[0] = "java"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Start starts d as Steam does, waits for /ping and compare-and-sets its
// PID; the caller must wait for the process.
func (f *Fixture) Start(javaPath string, d steam.Deployment, logTo *os.File) (*exec.Cmd, error) {
	cmd := f.Command(javaPath, d)
	if logTo != nil {
		cmd.Stdout, cmd.Stderr = logTo, logTo
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting deployment %s: %w", d.Name, err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := WaitReady(context.Background(), int(d.Port), 10*time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("starting deployment %s: %w", d.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := checkListener(ctx, cmd.Process.Pid, int(d.Port)); err != nil {
		stop()
		return nil, fmt.Errorf("starting deployment %s: %w", d.Name, err)
	}
	if err := steam.NewRegistry(f.Home).SetPID(ctx, d.ID, d.PID, int64(cmd.Process.Pid)); err != nil {
		stop()
		return nil, fmt.Errorf("starting deployment %s: %w", d.Name, err)
	}
	return cmd, nil
}

// SetPID plants a PID, as Steam or a crash would leave one.
func (f *Fixture) SetPID(id int64, pid int) error {
	var old sql.NullInt64
	if err := f.DB.QueryRow(`SELECT CAST(process_id AS INTEGER) FROM service WHERE id = ?`, id).Scan(&old); err != nil {
		return fmt.Errorf("reading PID of service %d: %w", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return steam.NewRegistry(f.Home).SetPID(ctx, id, old.Int64, int64(pid))
}

func WaitReady(ctx context.Context, port int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/ping", port)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("port %d not ready: %w", port, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
