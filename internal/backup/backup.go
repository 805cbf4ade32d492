// Package backup takes a consistent snapshot of a Steam home while Steam
// runs: Steam's database, steam-overseer's state database and the model
// folder with every war (followed through symbolic links, so the archive
// holds the wars themselves), in one gzipped tar with a manifest of sha256
// sums and the same sums as SHA256SUMS. Verify checks an archive; Restore
// extracts one into an empty folder, checking it as it goes.
//
// A live SQLite file is never copied byte for byte: a copy taken while Steam
// commits can hold half a transaction. Each database is instead written out
// by SQLite itself with VACUUM INTO from a read-only connection, which reads
// one consistent snapshot under a shared lock and never changes the source's
// journal mode, schema or content.
//
// The archive mirrors the home's layout, so that without steam-overseer a
// restore is
//
//	tar -xzf backup.tar.gz -C <steam home> && cd <steam home> && sha256sum -c SHA256SUMS
//
// with Steam stopped.
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

// ManifestName is the manifest's path inside the archive. It names the tool,
// because a restore extracts it into the Steam home beside Steam's own files.
const ManifestName = "steam-overseer-manifest.json"

// ChecksumsName is the archive's list of sha256 sums in sha256sum's format,
// beside the manifest: after extracting, "sha256sum -c SHA256SUMS" checks
// every file without steam-overseer.
const ChecksumsName = "SHA256SUMS"

// Manifest lists every regular file of an archive with its size and sha256,
// and every folder: an archive holds nothing else.
type Manifest struct {
	Created   time.Time `json:"created"`
	SteamHome string    `json:"steam_home"`
	StatePath string    `json:"state_path,omitempty"`
	Version   string    `json:"version"`
	Files     []File    `json:"files"`
	// Dirs is nil only in an archive of a version that did not list them.
	Dirs []string `json:"dirs"`
}

// File is one manifest entry. Path is relative to the Steam home, with
// forward slashes, as in the archive.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Options say what to back up and where to.
type Options struct {
	Home steam.Home
	// StatePath is steam-overseer's state database; it is backed up when it
	// exists and skipped when it does not (the remediator never ran).
	StatePath string
	// Output is the archive to write. When it names an existing directory,
	// the archive is written into it as steam-backup-<UTC time>.tar.gz, so
	// that a timer can keep one archive per run without a shell.
	Output string
	// BusyTimeout is how long a database read waits for a writer's lock;
	// zero means steam.DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Progress, when set, counts the bytes archived against the total.
	Progress *Progress
}

// Result describes a written archive.
type Result struct {
	Path     string
	Bytes    int64
	Manifest Manifest
	Duration time.Duration
}

// Create writes the archive. It is written to a temporary file beside the
// output and renamed into place only once complete and synced: on any error
// nothing is left behind, and an existing archive of the same name is kept.
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

	// Snapshots are staged beside the output: that filesystem is known to be
	// writable and to have room, unlike a tmpfs /tmp.
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

	// Steam's database first, the model folder after it. A model created
	// meanwhile then shows up as a war without a row, which a restore
	// tolerates; the other order would restore rows whose war is missing.
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
		// The copy keeps the source's permissions: Steam's database may hold
		// password hashes, and a restore must not widen who can read it.
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
		// Each copy is in the archive now; dropping it keeps the space the
		// staging takes to one database at a time.
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
	// SHA256SUMS comes last, so that it covers the manifest too:
	// "sha256sum -c SHA256SUMS" in the extracted archive checks everything.
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
	// The rename is durable only once the folder is synced; without it a
	// power loss could leave the old archive, or none, after "success".
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

// outputPath resolves Options.Output and checks that its folder exists, so
// that a typo fails with a message naming it.
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

// Snapshot writes a consistent copy of the SQLite database src to dst (which
// must not exist) with VACUUM INTO over a read-only connection, then checks
// the copy's integrity. The source is only read: its journal mode, schema
// and content stay as they are, and writers wait at most for the length of
// one read transaction.
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

// checkIntegrity runs PRAGMA integrity_check on a snapshot. It reads only the
// copy, so it costs Steam nothing, and a backup that could not be restored
// is reported now rather than on the day it is needed.
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

// stateArchiveName places the state database at its path inside the home,
// or at the default spot when it lives elsewhere: a restore into the home
// then finds it where a default remediator looks.
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

// resolved is path with every symbolic link in it resolved, or path itself
// when that fails (it does not exist yet).
func resolved(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// archive is a gzipped tar being written.
type archive struct {
	gz       *gzip.Writer
	tw       *tar.Writer
	h        hash.Hash
	progress *Progress
}

func newArchive(w io.Writer, progress *Progress) *archive {
	// Wars are zip files, already compressed: the fastest level saves
	// nearly as much as the default at a fraction of its CPU time, and
	// gzip's CPU is what a backup of gigabytes of wars waits for.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return &archive{gz: gz, tw: tar.NewWriter(gz), h: sha256.New(), progress: progress}
}

func (a *archive) close() error {
	if err := a.tw.Close(); err != nil {
		return err
	}
	return a.gz.Close()
}

// addFile archives the regular file at path under name, hashing what it
// writes. A file whose size changes while it is read (a war being
// rewritten) fails the backup rather than archiving a torn copy.
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

// addBytes archives b as the file name and returns its entry.
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

// checksums formats files as sha256sum does, in text mode: one
// "<sha256>  <path>" line each.
func checksums(files []File) []byte {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Path)
	}
	return []byte(b.String())
}

// planTree lists the folder root with everything below it, following
// symbolic links: operators keep the model folder, a model's folder or a
// war on other storage and link to it, and a backup that kept only the link
// would restore no war at all. What a link points to is archived under the
// link's own name, as a folder or a regular file, so the manifest's sums
// cover the wars' content and a restore into a bare home has everything.
// (Restoring into a home that still has the links, tar writes through a
// linked folder and replaces a linked file by the file.) A link whose target
// is missing is skipped with a warning: it has no content to save, and a
// restore creates no links (one from an archive could point anywhere).
// Anything else that is not a regular file or a folder cannot be restored
// and is skipped with a warning.
//
// The whole tree is listed before anything is archived, so that the
// progress line knows the total. output is the archive being written: found
// in the tree (through a link below the root), it fails the backup rather
// than archive itself.
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

// addTree archives what planTree listed: regular files and folders.
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

// treeWalk is one listing of planTree.
type treeWalk struct {
	logger  *slog.Logger
	home    steam.Home
	output  fs.FileInfo
	entries []treeEntry
	bytes   int64 // of the regular files listed
	// parents are the folders from the root down to the one being read, to
	// tell a link back up the tree, which would never end.
	parents []fs.FileInfo
}

// treeEntry is a folder or a regular file to archive; info is what the
// path resolves to.
type treeEntry struct {
	path string
	info fs.FileInfo
}

// dir lists the folder at path (info is its os.Stat) and what it holds.
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

// snapshotInfo describes a database snapshot by the backup's time and the
// source's permissions instead of the staging file's.
type snapshotInfo struct {
	fs.FileInfo
	modTime time.Time
	perm    fs.FileMode
}

func (s snapshotInfo) ModTime() time.Time { return s.modTime }
func (s snapshotInfo) Mode() fs.FileMode  { return s.perm }
