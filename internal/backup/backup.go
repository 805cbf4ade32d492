// Package backup archives a Steam home while Steam runs (both databases and
// every war, links followed) into a gzipped tar with a manifest and
// SHA256SUMS, and verifies and restores such archives. A live SQLite file is
// never copied byte for byte: VACUUM INTO over a read-only connection writes
// one consistent snapshot without touching the source's journal mode.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/steam-overseer/steam-overseer/internal/sqlitefile"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// ManifestName names the tool: a restore extracts it beside Steam's files.
const ManifestName = "steam-overseer-manifest.json"

// ChecksumsName lets "sha256sum -c SHA256SUMS" check a restore without us.
const ChecksumsName = "SHA256SUMS"

// Manifest lists every regular file and folder of an archive.
type Manifest struct {
	Created   time.Time `json:"created"`
	SteamHome string    `json:"steam_home"`
	StatePath string    `json:"state_path,omitempty"`
	Version   string    `json:"version"`
	Files     []File    `json:"files"`
	Dirs      []string  `json:"dirs"`
}

// File is one manifest entry; Path is slash-separated, relative to the home.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Options say what to back up and where to.
type Options struct {
	Home steam.Home
	// StatePath is backed up when it exists (the remediator may never have run).
	StatePath string
	// Output is the archive, or a folder to write steam-backup-<UTC time>.tar.gz into.
	Output      string
	BusyTimeout time.Duration
	Progress    *Progress
}

// Result describes a written archive.
type Result struct {
	Path     string
	Bytes    int64
	Manifest Manifest
	Duration time.Duration
}

// Create writes the archive to a temporary file beside the output and
// renames it into place once synced: a failure leaves nothing behind.
func Create(ctx context.Context, logger *slog.Logger, opts Options) (Result, error) {
	start := time.Now()
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = steam.DefaultBusyTimeout
	}
	out, err := outputPath(opts.Output, start)
	if err != nil {
		return Result{}, err
	}
	res := Result{Path: out}
	modelDir := filepath.Join(opts.Home.MasterDir(), "model")
	if within(out, modelDir) || within(filepath.Join(resolved(filepath.Dir(out)), filepath.Base(out)), resolved(modelDir)) {
		return res, fmt.Errorf("output %s is inside the model folder %s it backs up", out, modelDir)
	}
	if _, err := os.Stat(opts.Home.DBPath()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("no Steam database at %s: is %s an unpacked Steam release?", opts.Home.DBPath(), opts.Home.Dir)
		}
		return res, fmt.Errorf("opening Steam database: %w", err)
	}

	// Staged beside the output: known writable and roomy, unlike a tmpfs /tmp.
	dir := filepath.Dir(out)
	staging, err := os.MkdirTemp(dir, ".steam-backup-staging-")
	if err != nil {
		return res, fmt.Errorf("creating staging folder beside the output: %w", err)
	}
	defer os.RemoveAll(staging)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return res, fmt.Errorf("creating temporary archive beside the output: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	w := newArchive(tmp, opts.Progress)
	manifest := Manifest{Created: start.UTC(), SteamHome: opts.Home.Dir, Version: version.Version}

	// Steam's database before the wars: a war without a row restores fine,
	// a row without its war does not.
	dbs := []struct{ src, name string }{{opts.Home.DBPath(), relative(opts.Home, opts.Home.DBPath())}}
	if opts.StatePath != "" {
		switch _, err := os.Stat(opts.StatePath); {
		case err == nil:
			manifest.StatePath = opts.StatePath
			dbs = append(dbs, struct{ src, name string }{opts.StatePath, stateArchiveName(opts.Home, opts.StatePath)})
		case errors.Is(err, fs.ErrNotExist):
			logger.Info("No state database to back up", "path", opts.StatePath)
		default:
			return res, fmt.Errorf("opening state database: %w", err)
		}
	}
	for i, db := range dbs {
		snap := filepath.Join(staging, fmt.Sprintf("%d.db", i))
		t0 := time.Now()
		if err := Snapshot(ctx, db.src, snap, opts.BusyTimeout); err != nil {
			return res, err
		}
		logger.Debug("Snapshot taken", "db", db.src, "duration", time.Since(t0))
		// Keep the source's mode: Steam's database may hold password hashes.
		srcInfo, err := os.Stat(db.src)
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", db.src, err)
		}
		f, err := w.addFile(ctx, db.name, snap, func(fi fs.FileInfo) fs.FileInfo {
			return snapshotInfo{fi, start, srcInfo.Mode().Perm()}
		})
		if err != nil {
			return res, err
		}
		os.Remove(snap)
		manifest.Files = append(manifest.Files, f)
	}
	tmpInfo, err := tmp.Stat()
	if err != nil {
		return res, fmt.Errorf("writing archive %s: %w", tmp.Name(), err)
	}
	tree, err := planTree(logger, opts.Home, modelDir, tmpInfo)
	if err != nil {
		return res, err
	}
	opts.Progress.setTotal(opts.Progress.Done() + tree.bytes)
	files, dirs, err := w.addTree(ctx, tree)
	if err != nil {
		return res, err
	}
	manifest.Files = append(manifest.Files, files...)
	manifest.Dirs = append([]string{}, dirs...)

	body, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return res, fmt.Errorf("encoding manifest: %w", err)
	}
	manifestFile, err := w.addBytes(ManifestName, append(body, '\n'), start)
	if err != nil {
		return res, err
	}
	// Last, so that it covers the manifest too.
	sums := checksums(append(manifest.Files, manifestFile))
	if _, err := w.addBytes(ChecksumsName, sums, start); err != nil {
		return res, err
	}
	if err := w.close(); err != nil {
		return res, fmt.Errorf("writing archive %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return res, fmt.Errorf("syncing archive %s: %w", tmp.Name(), err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return res, fmt.Errorf("writing archive %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("writing archive %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return res, fmt.Errorf("moving archive into place: %w", err)
	}
	committed = true
	// Without syncing the folder a power loss could undo the rename.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return res, fmt.Errorf("syncing %s: %w", dir, err)
		}
	}
	res.Bytes = fi.Size()
	res.Manifest = manifest
	res.Duration = time.Since(start)
	return res, nil
}

func outputPath(output string, now time.Time) (string, error) {
	if output == "" {
		return "", errors.New("no output archive given")
	}
	out, err := filepath.Abs(output)
	if err != nil {
		return "", fmt.Errorf("resolving output %q: %w", output, err)
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return filepath.Join(out, "steam-backup-"+now.UTC().Format("20060102T150405Z")+".tar.gz"), nil
	}
	dir := filepath.Dir(out)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("output folder %s does not exist", dir)
	case err != nil:
		return "", fmt.Errorf("checking output folder: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("output folder %s is not a directory", dir)
	}
	return out, nil
}

// Snapshot copies the SQLite database src to dst with VACUUM INTO over a
// read-only connection and checks the copy's integrity.
func Snapshot(ctx context.Context, src, dst string, busyTimeout time.Duration) error {
	db, err := sqlitefile.Open(src, sqlitefile.Options{Mode: sqlitefile.ReadOnly, BusyTimeout: busyTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("snapshotting %s: %w", src, err)
	}
	return checkIntegrity(ctx, dst)
}

// checkIntegrity reads only the copy: an unrestorable backup fails now.
func checkIntegrity(ctx context.Context, path string) error {
	db, err := sqlitefile.Open(path, sqlitefile.Options{Mode: sqlitefile.ReadOnly})
	if err != nil {
		return fmt.Errorf("opening database for PRAGMA integrity_check: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("running PRAGMA integrity_check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("running PRAGMA integrity_check: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("running PRAGMA integrity_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("fails PRAGMA integrity_check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// stateArchiveName places a state database kept outside the home at the
// default spot, where a default remediator looks after a restore.
func stateArchiveName(home steam.Home, path string) string {
	abs, err := filepath.Abs(path)
	if err == nil && within(abs, home.Dir) {
		return relative(home, abs)
	}
	return relative(home, home.StatePath())
}

func relative(home steam.Home, path string) string {
	rel, err := filepath.Rel(home.Dir, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}

func resolved(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

type archive struct {
	gz       *gzip.Writer
	tw       *tar.Writer
	h        hash.Hash
	progress *Progress
}

func newArchive(w io.Writer, progress *Progress) *archive {
	// Wars are already-compressed zips: BestSpeed saves nearly as much at a
	// fraction of the CPU.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return &archive{gz: gz, tw: tar.NewWriter(gz), h: sha256.New(), progress: progress}
}

func (a *archive) close() error {
	if err := a.tw.Close(); err != nil {
		return err
	}
	return a.gz.Close()
}

// addFile fails when the file's size changes while read (a war being
// rewritten) rather than archive a torn copy.
func (a *archive) addFile(ctx context.Context, name, path string, as func(fs.FileInfo) fs.FileInfo) (File, error) {
	if err := ctx.Err(); err != nil {
		return File{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, fmt.Errorf("reading %s: %w", path, err)
	}
	hdrInfo := fi
	if as != nil {
		hdrInfo = as(fi)
	}
	hdr, err := tar.FileInfoHeader(hdrInfo, "")
	if err != nil {
		return File{}, fmt.Errorf("archiving %s: %w", path, err)
	}
	hdr.Name = name
	if err := a.tw.WriteHeader(hdr); err != nil {
		return File{}, fmt.Errorf("writing archive: %w", err)
	}
	a.h.Reset()
	n, err := io.Copy(io.MultiWriter(a.tw, a.h, a.progress), io.LimitReader(f, fi.Size()+1))
	switch {
	case errors.Is(err, tar.ErrWriteTooLong) || (err == nil && n != fi.Size()):
		return File{}, fmt.Errorf("archiving %s: file changed size while it was read", path)
	case err != nil:
		return File{}, fmt.Errorf("archiving %s: %w", path, err)
	}
	return File{Path: name, Size: n, SHA256: hex.EncodeToString(a.h.Sum(nil))}, nil
}

func (a *archive) addBytes(name string, b []byte, modTime time.Time) (File, error) {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644, ModTime: modTime}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return File{}, fmt.Errorf("writing archive: %w", err)
	}
	if _, err := a.tw.Write(b); err != nil {
		return File{}, fmt.Errorf("writing archive: %w", err)
	}
	sum := sha256.Sum256(b)
	return File{Path: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, nil
}

func checksums(files []File) []byte {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Path)
	}
	return []byte(b.String())
}

// planTree lists root, following symbolic links: operators link model
// folders and wars to other storage, and a backup of the link alone would
// restore no war. Dangling links and special files are skipped with a
// warning; the archive itself found in the tree fails the backup. Listing
// first gives the progress line its total.
func planTree(logger *slog.Logger, home steam.Home, root string, output fs.FileInfo) (*treeWalk, error) {
	t := &treeWalk{logger: logger, home: home, output: output}
	info, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, lerr := os.Lstat(root); lerr == nil {
			return nil, fmt.Errorf("model folder %s is a link to nothing: is its storage mounted?", root)
		}
		logger.Warn("No model folder to back up", "path", root)
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", root, err)
	case !info.IsDir():
		return nil, fmt.Errorf("model folder %s is not a directory", root)
	}
	if err := t.dir(root, info); err != nil {
		return nil, err
	}
	return t, nil
}

func (a *archive) addTree(ctx context.Context, t *treeWalk) (files []File, dirs []string, err error) {
	for _, e := range t.entries {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		name := relative(t.home, e.path)
		if e.info.Mode().IsRegular() {
			f, err := a.addFile(ctx, name, e.path, nil)
			if err != nil {
				return nil, nil, err
			}
			files = append(files, f)
			continue
		}
		hdr, err := tar.FileInfoHeader(e.info, "")
		if err != nil {
			return nil, nil, fmt.Errorf("archiving %s: %w", e.path, err)
		}
		hdr.Name = name + "/"
		if err := a.tw.WriteHeader(hdr); err != nil {
			return nil, nil, fmt.Errorf("writing archive: %w", err)
		}
		dirs = append(dirs, name)
	}
	return files, dirs, nil
}

type treeWalk struct {
	logger  *slog.Logger
	home    steam.Home
	output  fs.FileInfo
	entries []treeEntry
	bytes   int64 // of the regular files listed
	// parents detect a link back up the tree, which would never end.
	parents []fs.FileInfo
}

type treeEntry struct {
	path string
	info fs.FileInfo
}

func (t *treeWalk) dir(path string, info fs.FileInfo) error {
	for _, p := range t.parents {
		if os.SameFile(p, info) {
			return fmt.Errorf("archiving %s: a symbolic link loop leads back to a folder above it", path)
		}
	}
	t.entries = append(t.entries, treeEntry{path: path, info: info})
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	t.parents = append(t.parents, info)
	defer func() { t.parents = t.parents[:len(t.parents)-1] }()
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) && e.Type()&fs.ModeSymlink != 0 {
			link, _ := os.Readlink(p)
			t.logger.Warn("Skipping a symbolic link whose target is missing", "path", p, "target", link)
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		switch {
		case info.IsDir():
			err = t.dir(p, info)
		case os.SameFile(info, t.output):
			err = fmt.Errorf("the output archive is inside the model folder it backs up, at %s", p)
		case info.Mode().IsRegular():
			t.entries = append(t.entries, treeEntry{path: p, info: info})
			t.bytes += info.Size()
		default:
			t.logger.Warn("Skipping a file that is neither regular nor a folder", "path", p, "mode", info.Mode().String())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type snapshotInfo struct {
	fs.FileInfo
	modTime time.Time
	perm    fs.FileMode
}

func (s snapshotInfo) ModTime() time.Time { return s.modTime }
func (s snapshotInfo) Mode() fs.FileMode  { return s.perm }
