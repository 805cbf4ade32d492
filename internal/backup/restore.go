package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrTargetNotEmpty: Restore never writes into a folder holding something,
// so it cannot overwrite a live Steam home.
var ErrTargetNotEmpty = errors.New("not empty")

// Restore extracts the archive at path into dir, empty or absent, writing
// only the folders and regular files the manifest lists, each through an
// os.Root on dir so no entry can write outside it. A failure removes what it
// wrote.
func Restore(ctx context.Context, path, dir string) (v Verified, err error) {
	if _, err := os.Stat(path); err != nil {
		return v, err
	}
	// The manifest comes last: a first pass checks every entry against it
	// before anything is written, the second checks again as it writes.
	listed, err := readArchive(ctx, path, func(entry) error { return nil })
	if err != nil {
		return listed, err
	}
	created, err := prepareTarget(dir)
	if err != nil {
		return v, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return v, fmt.Errorf("opening %s: %w", dir, err)
	}
	defer func() {
		root.Close()
		if err != nil {
			clearTarget(dir, created)
		}
	}()
	r := &restorer{ctx: ctx, dir: dir, root: root, listed: contentsOf(listed.Manifest)}
	if v, err = readArchive(ctx, path, r.put); err != nil {
		return v, err
	}
	// Folders last, deepest first: a read-only folder must not block the files
	// below it, nor a file's write change its folder's time.
	slices.Reverse(r.dirs)
	for _, d := range r.dirs {
		if err := r.root.Chmod(d.name, d.hdr.FileInfo().Mode().Perm()); err != nil {
			return v, fmt.Errorf("restoring %s: %w", d.name, err)
		}
		if err := r.root.Chtimes(d.name, time.Time{}, d.hdr.ModTime); err != nil {
			return v, fmt.Errorf("restoring %s: %w", d.name, err)
		}
	}
	return v, nil
}

func prepareTarget(dir string) (created bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return false, fmt.Errorf("creating %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, fmt.Errorf("%s is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", dir, err)
	}
	if len(entries) > 0 {
		names := make([]string, 0, 3)
		for _, e := range entries[:min(3, len(entries))] {
			names = append(names, e.Name())
		}
		more := ""
		if len(entries) > 3 {
			more = ", …"
		}
		return false, fmt.Errorf("%s is %w (it holds %s%s): restore writes only into an empty or absent "+
			"folder, never over a Steam home", dir, ErrTargetNotEmpty, strings.Join(names, ", "), more)
	}
	return false, nil
}

func clearTarget(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

type restorer struct {
	ctx    context.Context
	dir    string
	root   *os.Root
	listed contents
	dirs   []entry // folders restored, their bits and times set last
}

func (r *restorer) put(e entry) error {
	if parent := path.Dir(e.name); parent != "." {
		if err := r.root.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("restoring %s: %w", e.name, err)
		}
	}
	if e.hdr.Typeflag == tar.TypeDir {
		if !r.listed.hasDir(e.name) {
			return badFile(e.name, "is a folder the manifest does not list")
		}
		// Writable until the end, when the archive's bits are set.
		if err := r.root.MkdirAll(e.name, 0o755); err != nil {
			return fmt.Errorf("restoring %s: %w", e.name, err)
		}
		r.dirs = append(r.dirs, e)
		return nil
	}
	size, ok := r.listed.sizes[e.name]
	switch {
	case !ok:
		return badFile(e.name, "is not listed in the manifest")
	case e.hdr.Size != size:
		return badFile(e.name, "is %d bytes, but the manifest lists %d", e.hdr.Size, size)
	}
	f, err := r.root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.hdr.FileInfo().Mode().Perm())
	if err != nil {
		return fmt.Errorf("restoring %s: %w", e.name, err)
	}
	_, err = f.ReadFrom(io.LimitReader(e.content, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", e.name, err)
	}
	if err := r.root.Chtimes(e.name, time.Time{}, e.hdr.ModTime); err != nil {
		return fmt.Errorf("restoring %s: %w", e.name, err)
	}
	if e.sqlite {
		return checkDatabase(r.ctx, e.name, filepath.Join(r.dir, filepath.FromSlash(e.name)))
	}
	return nil
}
