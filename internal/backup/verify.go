package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

const steamDBName = "var/master/db/steam.db"

// Databases are told by their magic, not their name, so a state database
// at a custom path is checked too.
var sqliteMagic = []byte("SQLite format 3\x00")

// maxListBytes bounds the manifest and SHA256SUMS read into memory.
const maxListBytes = 64 << 20

// BadFileError names the first bad file of an archive and why.
type BadFileError struct {
	Path string
	Err  error
}

func (e *BadFileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *BadFileError) Unwrap() error { return e.Err }

func badFile(name, format string, args ...any) error {
	return &BadFileError{Path: name, Err: fmt.Errorf(format, args...)}
}

// Verified sums up an archive that passed verification.
type Verified struct {
	Manifest  Manifest
	Files     int   // regular files of the home: not the manifest, not SHA256SUMS
	Bytes     int64 // of those files
	Databases []string
	// ListedIn is SHA256SUMS, or the manifest in an archive of an older version.
	ListedIn string
}

// Verify checks every file's sum and size against SHA256SUMS and the
// manifest, that nothing is missing, unlisted or a link, and that every
// SQLite database passes integrity_check. A *BadFileError names the first bad file.
func Verify(ctx context.Context, path string) (Verified, error) {
	tmp, err := os.MkdirTemp("", "steam-backup-verify-")
	if err != nil {
		return Verified{}, fmt.Errorf("creating a folder for database copies: %w", err)
	}
	defer os.RemoveAll(tmp)
	return readArchive(ctx, path, func(e entry) error {
		if !e.sqlite {
			return nil // readArchive reads the rest for the sum
		}
		copyPath := filepath.Join(tmp, "check.db")
		defer os.Remove(copyPath)
		if err := writeFile(copyPath, e.content, 0o600); err != nil {
			return err
		}
		return checkDatabase(ctx, e.name, copyPath)
	})
}

func checkDatabase(ctx context.Context, name, path string) error {
	if err := checkIntegrity(ctx, path); err != nil {
		return &BadFileError{Path: name, Err: err}
	}
	return nil
}

func writeFile(path string, r io.Reader, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

type entry struct {
	hdr *tar.Header
	// name is hdr.Name made safe: relative, clean, never leaving the target.
	name string
	// What put leaves of content unread is read after it, for the sum.
	content io.Reader
	sqlite  bool
}

// readArchive streams the archive to put (all but the manifest and
// SHA256SUMS) and compares sums at the end. A *BadFileError from put lets
// reading go on, so the first bad file in archive order is reported.
func readArchive(ctx context.Context, path string, put func(entry) error) (Verified, error) {
	var v Verified
	f, err := os.Open(path)
	if err != nil {
		return v, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return v, fmt.Errorf("%s is not a gzipped archive: %w", path, err)
	}
	tr := tar.NewReader(gz)
	sums := map[string]string{}
	sizes := map[string]int64{}
	var order []string // regular files, in archive order
	var dirs []string
	bad := map[string]error{}
	seen := map[string]bool{}
	var manifest, checksums []byte
	for {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v, fmt.Errorf("reading archive after %d files: %w", len(order), err)
		}
		name, err := entryName(hdr)
		if err != nil {
			return v, err
		}
		if seen[name] {
			return v, badFile(name, "appears twice in the archive")
		}
		seen[name] = true
		e := entry{hdr: hdr, name: name}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := put(e); err != nil {
				return v, err
			}
			dirs = append(dirs, name)
			continue
		case tar.TypeReg:
		case tar.TypeSymlink:
			return v, badFile(name, "is a symbolic link (to %q): a backup holds none, and a restore creates none", hdr.Linkname)
		case tar.TypeLink:
			return v, badFile(name, "is a hard link (to %q): a backup holds none, and a restore creates none", hdr.Linkname)
		default:
			return v, badFile(name, "is of a type a backup never holds (%q)", hdr.Typeflag)
		}

		h := sha256.New()
		content := bufio.NewReaderSize(io.TeeReader(tr, h), 1<<16)
		switch name {
		case ManifestName, ChecksumsName:
			b, err := io.ReadAll(io.LimitReader(content, maxListBytes+1))
			if err != nil {
				return v, fmt.Errorf("reading %s from the archive: %w", name, err)
			}
			if len(b) > maxListBytes {
				return v, badFile(name, "is larger than %d bytes", maxListBytes)
			}
			if name == ManifestName {
				manifest = b
			} else {
				checksums = b
			}
		default:
			magic, _ := content.Peek(len(sqliteMagic))
			e.content, e.sqlite = content, bytes.Equal(magic, sqliteMagic)
			var bf *BadFileError
			switch err := put(e); {
			case errors.As(err, &bf):
				bad[name] = bf
			case err != nil:
				return v, err
			}
			if e.sqlite {
				v.Databases = append(v.Databases, name)
			}
			v.Files++
			v.Bytes += hdr.Size
		}
		if _, err := io.Copy(io.Discard, content); err != nil {
			return v, fmt.Errorf("reading %s from the archive: %w", name, err)
		}
		if name != ChecksumsName {
			order = append(order, name)
			sums[name] = hex.EncodeToString(h.Sum(nil))
			sizes[name] = hdr.Size
		}
	}
	if err := json.Unmarshal(manifest, &v.Manifest); err != nil {
		return v, badFile(ManifestName, "is missing or not a manifest: %v", err)
	}
	listed := v.Manifest.Files
	v.ListedIn = ChecksumsName
	if checksums != nil {
		if listed, err = parseChecksums(checksums); err != nil {
			return v, badFile(ChecksumsName, "%v", err)
		}
	} else {
		// An older version's archive: only its manifest lists sums.
		listed = append(listed, File{Path: ManifestName, SHA256: sums[ManifestName]})
		v.ListedIn = "the manifest"
	}
	if err := compareSums(order, sums, sizes, bad, listed, v.Manifest.Files); err != nil {
		return v, err
	}
	c := contentsOf(v.Manifest)
	for _, d := range dirs {
		if !c.hasDir(d) {
			return v, badFile(d, "is a folder the manifest does not list")
		}
	}
	return v, nil
}

type contents struct {
	sizes map[string]int64 // regular files
	dirs  map[string]bool  // listed folders and those of every listed entry
	// anyDir: an older manifest that listed no folders.
	anyDir bool
}

func contentsOf(m Manifest) contents {
	c := contents{sizes: map[string]int64{}, dirs: map[string]bool{}, anyDir: m.Dirs == nil}
	addParents := func(name string) {
		for p := path.Dir(name); p != "." && !c.dirs[p]; p = path.Dir(p) {
			c.dirs[p] = true
		}
	}
	for _, f := range m.Files {
		c.sizes[f.Path] = f.Size
		addParents(f.Path)
	}
	for _, d := range m.Dirs {
		c.dirs[path.Clean(d)] = true
		addParents(path.Clean(d))
	}
	return c
}

func (c contents) hasDir(name string) bool { return c.anyDir || c.dirs[name] }

// entryName refuses, never rewrites, an absolute name or one with "..".
func entryName(hdr *tar.Header) (string, error) {
	name := strings.TrimSuffix(hdr.Name, "/")
	clean := path.Clean(name)
	if name == "" || !filepath.IsLocal(filepath.FromSlash(clean)) || strings.Contains(name, `\`) {
		return "", badFile(hdr.Name, "leaves the folder it would be restored into")
	}
	return clean, nil
}

// parseChecksums reads sha256sum's text ("  ") and binary (" *") lines.
func parseChecksums(b []byte) ([]File, error) {
	var files []File
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, " ")
		if strings.HasPrefix(name, " ") || strings.HasPrefix(name, "*") {
			name = name[1:]
		}
		if _, err := hex.DecodeString(sum); !ok || err != nil || len(sum) != 2*sha256.Size || name == "" {
			return nil, fmt.Errorf("line %d is not \"<sha256>  <path>\"", i+1)
		}
		files = append(files, File{Path: name, SHA256: sum})
	}
	return files, nil
}

// compareSums finds the first bad file in archive order, then the first
// listed one that is missing.
func compareSums(order []string, sums map[string]string, sizes map[string]int64, bad map[string]error, listed, manifest []File) error {
	want := map[string]string{}
	for _, f := range listed {
		want[f.Path] = f.SHA256
	}
	inManifest := map[string]File{}
	for _, f := range manifest {
		inManifest[f.Path] = f
	}
	for _, name := range order {
		w, ok := want[name]
		switch {
		case !ok:
			return badFile(name, "is not listed in %s", ChecksumsName)
		case w != sums[name]:
			return badFile(name, "has sha256 %s, but %s lists %s", sums[name], ChecksumsName, w)
		case name != ManifestName && inManifest[name].SHA256 != sums[name]:
			return badFile(name, "has sha256 %s, but the manifest lists %q", sums[name], inManifest[name].SHA256)
		case name != ManifestName && inManifest[name].Size != sizes[name]:
			return badFile(name, "is %d bytes, but the manifest lists %d", sizes[name], inManifest[name].Size)
		case bad[name] != nil:
			return bad[name]
		}
	}
	for _, f := range listed {
		if _, ok := sums[f.Path]; !ok {
			return badFile(f.Path, "is listed in %s but missing from the archive", ChecksumsName)
		}
	}
	if _, ok := sums[steamDBName]; !ok {
		return badFile(steamDBName, "is missing from the archive")
	}
	return nil
}
