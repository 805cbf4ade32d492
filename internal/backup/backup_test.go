package backup_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/backup"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// historyWriter plays Steam: it keeps committing short transactions of
// rowsPerTx history rows each through its own connection until stopped.
type historyWriter struct {
	db        *sql.DB
	committed atomic.Int64 // highest history id committed so far
	commits   atomic.Int64
	stop      chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
	err       error
}

const rowsPerTx = 3

func startHistoryWriter(t *testing.T, dbPath string) *historyWriter {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	w := &historyWriter{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for n := 0; ; n++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if err := w.commit(n); err != nil {
				w.err = err
				return
			}
		}
	}()
	t.Cleanup(func() { w.halt(); db.Close() })
	return w
}

func (w *historyWriter) commit(n int) error {
	tx, err := w.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var last int64
	for i := 0; i < rowsPerTx; i++ {
		res, err := tx.Exec(`INSERT INTO history (action, identity_id, entity_type_id, entity_id, description, created)
			VALUES ('update', 1, 7, 1, ?, datetime('now'))`, fmt.Sprintf("tx %d", n))
		if err != nil {
			return fmt.Errorf("transaction %d: %w", n, err)
		}
		last, _ = res.LastInsertId()
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction %d: %w", n, err)
	}
	w.committed.Store(last)
	w.commits.Add(1)
	return nil
}

func (w *historyWriter) halt() error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.err
}

func journalMode(t *testing.T, db *sql.DB) string {
	t.Helper()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return mode
}

func TestCreateWhileSteamWrites(t *testing.T) {
	h := testkit.NewHome(t)
	running, _ := h.Run(testkit.Spec{Name: "churn", LogicalName: "churn"})
	py := h.Add(testkit.Spec{Name: "fraud", LogicalName: "fraud", PyWar: true})
	h.Add(testkit.Spec{Name: "legacy"}) // no logical name: war named after the deployment
	// A model folder may hold more than the war Steam runs (older versions,
	// notes): the backup keeps the whole folder.
	if err := os.WriteFile(filepath.Join(h.Home.ModelDir(py.ModelID), "README.txt"), []byte("retrained 2024-05\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(running.War, filepath.Join(h.Home.ModelDir(py.ModelID), "current.war")); err != nil {
		t.Fatal(err)
	}

	st, err := state.Open(context.Background(), h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(context.Background(), state.Entry{DeploymentID: running.ID, Deployment: running.Name,
		Action: state.ActionRestart, Result: state.ResultSuccess, OldPID: 1, NewPID: 2}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	modeBefore := journalMode(t, h.DB)
	w := startHistoryWriter(t, h.Home.DBPath())
	testkit.Eventually(t, 10*time.Second, "Steam's writer to commit", func() bool { return w.commits.Load() >= 20 })
	committedBefore := w.committed.Load()
	commitsBefore := w.commits.Load()

	outDir := t.TempDir()
	out := filepath.Join(outDir, "steam.tar.gz")
	res, err := backup.Create(context.Background(), promslog.NewNopLogger(), backup.Options{
		Home: h.Home, StatePath: h.Home.StatePath(), Output: out,
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	commitsDuring := w.commits.Load() - commitsBefore
	// Let Steam go on writing after the snapshot too, then stop it.
	target := w.commits.Load() + 5
	testkit.Eventually(t, 10*time.Second, "Steam's writer to go on", func() bool { return w.commits.Load() >= target })
	if err := w.halt(); err != nil {
		t.Fatalf("Steam's writer failed, the backup blocked it: %v", err)
	}
	t.Logf("backup of %d files, %d bytes took %s; %d commits of Steam's writer overlapped it",
		len(res.Manifest.Files), res.Bytes, res.Duration, commitsDuring)

	if got := journalMode(t, h.DB); got != modeBefore {
		t.Errorf("Steam's journal mode changed from %q to %q", modeBefore, got)
	}
	if _, err := os.Stat(h.Home.DBPath() + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a WAL file appeared beside Steam's database: %v", err)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 1 {
		t.Errorf("output folder holds %v, want only the archive", names(entries))
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != res.Bytes {
		t.Errorf("result says %d bytes, archive has %d", res.Bytes, fi.Size())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("archive is readable by others (%v); it holds Steam's database", perm)
	}

	restored := t.TempDir()
	extract(t, out, restored)
	manifest := checkManifest(t, restored)

	// Every war and every other file of the model folder, byte for byte;
	// a linked war by its content.
	var wantFiles []string
	modelDir := filepath.Join(h.Home.MasterDir(), "model")
	err = filepath.WalkDir(modelDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(h.Home.Dir, path)
		wantFiles = append(wantFiles, filepath.ToSlash(rel))
		want, _ := os.ReadFile(path)
		got, err := os.ReadFile(filepath.Join(restored, rel))
		if err != nil {
			t.Errorf("restored home lacks %s: %v", rel, err)
		} else if string(got) != string(want) {
			t.Errorf("restored %s differs from the original", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles = append(wantFiles, "var/master/db/steam.db", "var/master/db/steam-overseer.db")
	for _, f := range wantFiles {
		if _, ok := manifest[f]; !ok {
			t.Errorf("manifest lacks %s", f)
		}
	}
	if len(manifest) != len(wantFiles) {
		t.Errorf("manifest lists %d files, want %d: %v", len(manifest), len(wantFiles), wantFiles)
	}
	if fi, err := os.Lstat(filepath.Join(restored, "var/master/model", fmt.Sprint(py.ModelID), "current.war")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("linked war restored as %v (%v), want a regular file", fi, err)
	}

	db := openSQLite(t, filepath.Join(restored, "var/master/db/steam.db"))
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("restored steam.db integrity_check = %q, %v", check, err)
	}
	var upTo, maxID int64
	if err := db.QueryRow(`SELECT count(*), COALESCE((SELECT max(id) FROM history), 0) FROM history WHERE id <= ?`,
		committedBefore).Scan(&upTo, &maxID); err != nil {
		t.Fatal(err)
	}
	if upTo != committedBefore {
		t.Errorf("restored history holds %d of the %d rows committed before the backup began", upTo, committedBefore)
	}
	var torn int
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT description FROM history GROUP BY description
		HAVING count(*) != ?)`, rowsPerTx).Scan(&torn); err != nil {
		t.Fatal(err)
	}
	if torn != 0 {
		t.Errorf("%d of Steam's transactions are restored only in part", torn)
	}
	var services int
	if err := db.QueryRow(`SELECT count(*) FROM service`).Scan(&services); err != nil || services != 3 {
		t.Errorf("restored service rows = %d (%v), want 3", services, err)
	}
	if got := journalMode(t, db); got != modeBefore {
		t.Errorf("restored database journal mode %q, want Steam's %q", got, modeBefore)
	}
	srcInfo, _ := os.Stat(h.Home.DBPath())
	restoredInfo, _ := os.Stat(filepath.Join(restored, "var/master/db/steam.db"))
	if srcInfo.Mode().Perm() != restoredInfo.Mode().Perm() {
		t.Errorf("restored steam.db has mode %v, Steam's has %v", restoredInfo.Mode().Perm(), srcInfo.Mode().Perm())
	}

	rst, err := state.OpenReadOnly(filepath.Join(restored, "var/master/db/steam-overseer.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	counts, err := rst.RestartCounts(context.Background())
	if err != nil || counts[running.ID] != 1 {
		t.Errorf("restored restart counts = %v (%v), want deployment %d at 1", counts, err, running.ID)
	}
}

func names(es []os.DirEntry) []string {
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name())
	}
	return ns
}

func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// extract is a restore: the archive unpacked into dir, refusing any entry
// that would land outside it.
func extract(t *testing.T, archive, dir string) {
	t.Helper()
	for _, e := range readEntries(t, archive) {
		hdr := e.hdr
		path := filepath.Join(dir, hdr.Name)
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			t.Fatalf("archive entry %q escapes the restore folder", hdr.Name)
		}
		var err error
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, path)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				err = os.WriteFile(path, e.content, hdr.FileInfo().Mode().Perm())
			}
		default:
			t.Fatalf("unexpected archive entry %q of type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkManifest recomputes size and sha256 of every file the restored
// manifest lists, and returns them by path.
func checkManifest(t *testing.T, dir string) map[string]backup.File {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, backup.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decoding manifest: %v", err)
	}
	files := map[string]backup.File{}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Errorf("manifest lists %s: %v", f.Path, err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != f.SHA256 || int64(len(b)) != f.Size {
			t.Errorf("%s: restored sha256 %s size %d, manifest says %s size %d", f.Path, got, len(b), f.SHA256, f.Size)
		}
		files[f.Path] = f
	}
	return files
}

func TestCreateFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, h *testkit.Home, outDir string) (output string)
		wantErr string
	}{
		{
			name: "output folder missing",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				return filepath.Join(outDir, "nonexistent", "steam.tar.gz")
			},
			wantErr: "does not exist",
		},
		{
			name: "steam.db missing",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				if err := os.Remove(h.Home.DBPath()); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(outDir, "steam.tar.gz")
			},
			wantErr: "no Steam database at",
		},
		{
			// Fails after the temporary archive exists: nothing may remain.
			name: "steam.db not a database",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				if err := os.WriteFile(h.Home.DBPath(), []byte(strings.Repeat("not sqlite ", 1000)), 0o644); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(outDir, "steam.tar.gz")
			},
			wantErr: "snapshotting",
		},
		{
			name: "model folder a link to nothing",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				modelDir := filepath.Join(h.Home.MasterDir(), "model")
				if err := os.RemoveAll(modelDir); err != nil {
					t.Fatal(err)
				}
				symlink(t, filepath.Join(t.TempDir(), "unmounted"), modelDir)
				return filepath.Join(outDir, "steam.tar.gz")
			},
			wantErr: "is a link to nothing",
		},
		{
			name: "symbolic link loop",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				symlink(t, "..", filepath.Join(h.Home.ModelDir(1), "all-models"))
				return filepath.Join(outDir, "steam.tar.gz")
			},
			wantErr: "loop",
		},
		{
			name: "output inside the model folder through a link",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				symlink(t, filepath.Join(h.Home.MasterDir(), "model"), filepath.Join(outDir, "models"))
				return filepath.Join(outDir, "models", "steam.tar.gz")
			},
			wantErr: "inside the model folder",
		},
		{
			name: "output inside a linked folder of a model",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				storage := filepath.Join(outDir, "model-1")
				if err := os.Rename(h.Home.ModelDir(1), storage); err != nil {
					t.Fatal(err)
				}
				symlink(t, storage, h.Home.ModelDir(1))
				return filepath.Join(storage, "steam.tar.gz")
			},
			wantErr: "inside the model folder",
		},
		{
			name: "output inside the model folder",
			prepare: func(t *testing.T, h *testkit.Home, outDir string) string {
				return filepath.Join(h.Home.MasterDir(), "model", "steam.tar.gz")
			},
			wantErr: "inside the model folder",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewHome(t)
			h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
			outDir := t.TempDir()
			out := tc.prepare(t, h, outDir)
			_, err := backup.Create(context.Background(), promslog.NewNopLogger(), backup.Options{
				Home: h.Home, StatePath: h.Home.StatePath(), Output: out,
			})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists after a failed backup: %v", out, err)
			}
			for _, dir := range []string{outDir, filepath.Dir(out)} {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), ".") {
						t.Errorf("left behind %s", filepath.Join(dir, e.Name()))
					}
				}
			}
		})
	}
}

// TestCreateFollowsLinks backs up a home whose model folder lives on other
// storage behind a link, with a model's folder and a war linked further
// still, and restores it into a bare folder: every war must come back as
// its content, matching the manifest.
func TestCreateFollowsLinks(t *testing.T) {
	h := testkit.NewHome(t)
	a := h.Add(testkit.Spec{Name: "a", LogicalName: "a"})
	b := h.Add(testkit.Spec{Name: "b", LogicalName: "b", PyWar: true})
	c := h.Add(testkit.Spec{Name: "c", LogicalName: "c", NoWar: true})

	// Read the wars before any link exists: what a restore must give back.
	want := map[string][]byte{}
	for _, d := range []int64{a.ID, b.ID} {
		dep := h.Deployment(d)
		rel, _ := filepath.Rel(h.Home.Dir, dep.War)
		want[filepath.ToSlash(rel)] = readFile(t, dep.War)
	}
	storage := t.TempDir()
	// var/master/model -> <storage>/models
	modelDir := filepath.Join(h.Home.MasterDir(), "model")
	if err := os.Rename(modelDir, filepath.Join(storage, "models")); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(storage, "models"), modelDir)
	// model/<b> -> <storage>/model-b
	if err := os.Rename(h.Home.ModelDir(b.ModelID), filepath.Join(storage, "model-b")); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(storage, "model-b"), h.Home.ModelDir(b.ModelID))
	// model/<c>/c.war -> <storage>/c-v2.war, and a link to a war long gone.
	if err := os.MkdirAll(h.Home.ModelDir(c.ModelID), 0o755); err != nil {
		t.Fatal(err)
	}
	want["var/master/model/"+fmt.Sprint(c.ModelID)+"/c.war"] = []byte("mode=normal\n# c, version 2\n")
	if err := os.WriteFile(filepath.Join(storage, "c-v2.war"), want["var/master/model/"+fmt.Sprint(c.ModelID)+"/c.war"], 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(storage, "c-v2.war"), filepath.Join(h.Home.ModelDir(c.ModelID), "c.war"))
	symlink(t, filepath.Join(storage, "c-v1.war"), filepath.Join(h.Home.ModelDir(c.ModelID), "c-v1.war"))
	// The registry sees every war through the links.
	for _, id := range []int64{a.ID, b.ID, c.ID} {
		if d := h.Deployment(id); d.War == "" || d.Problem != "" {
			t.Fatalf("deployment %s before the backup: war %q problem %q", d.Name, d.War, d.Problem)
		}
	}

	out := filepath.Join(t.TempDir(), "steam.tar.gz")
	if _, err := backup.Create(context.Background(), promslog.NewNopLogger(), backup.Options{
		Home: h.Home, StatePath: h.Home.StatePath(), Output: out,
	}); err != nil {
		t.Fatal(err)
	}
	restored := t.TempDir()
	extract(t, out, restored)
	manifest := checkManifest(t, restored)
	for name, content := range want {
		sum := sha256.Sum256(content)
		if f, ok := manifest[name]; !ok || f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("manifest entry of %s is %+v, want sha256 %x", name, f, sum)
		}
		if got, err := os.ReadFile(filepath.Join(restored, name)); err != nil || string(got) != string(content) {
			t.Errorf("restored %s: %q (%v), want the war's content", name, got, err)
		}
	}
	for _, dir := range []string{"var/master/model", "var/master/model/" + fmt.Sprint(b.ModelID)} {
		if fi, err := os.Lstat(filepath.Join(restored, dir)); err != nil || !fi.IsDir() {
			t.Errorf("%s restored as %v (%v), want a folder", dir, fi, err)
		}
	}
	// The link to nothing has no content to lose, and a restore creates no
	// link: it is skipped.
	if fi, err := os.Lstat(filepath.Join(restored, "var/master/model", fmt.Sprint(c.ModelID), "c-v1.war")); err == nil {
		t.Errorf("dangling link archived, restored as %v", fi.Mode())
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCreateIntoFolder(t *testing.T) {
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	outDir := t.TempDir()
	now := time.Now().UTC()
	res, err := backup.Create(context.Background(), promslog.NewNopLogger(), backup.Options{
		Home: h.Home, StatePath: h.Home.StatePath(), Output: outDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(res.Path) != outDir || !strings.HasPrefix(filepath.Base(res.Path), "steam-backup-"+now.Format("20060102T")) ||
		!strings.HasSuffix(res.Path, ".tar.gz") {
		t.Errorf("archive written to %s, want %s/steam-backup-<time>.tar.gz", res.Path, outDir)
	}
	if _, err := os.Stat(res.Path); err != nil {
		t.Fatal(err)
	}
	// The state database does not exist yet: only Steam's is in the archive.
	restored := t.TempDir()
	extract(t, res.Path, restored)
	files := checkManifest(t, restored)
	if _, ok := files["var/master/db/steam-overseer.db"]; ok {
		t.Error("archive holds a state database that did not exist")
	}
	if _, ok := files["var/master/db/steam.db"]; !ok {
		t.Error("archive lacks steam.db")
	}
}

func BenchmarkCreate(b *testing.B) {
	h := testkit.NewHome(b)
	for i := range 10 {
		h.Add(testkit.Spec{Name: fmt.Sprintf("model-%d", i), LogicalName: fmt.Sprintf("model%d", i)})
	}
	out := filepath.Join(b.TempDir(), "steam.tar.gz")
	for b.Loop() {
		if _, err := backup.Create(context.Background(), promslog.NewNopLogger(), backup.Options{
			Home: h.Home, StatePath: h.Home.StatePath(), Output: out,
		}); err != nil {
			b.Fatal(err)
		}
	}
}
