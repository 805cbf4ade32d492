package backup_test

import (
	"archive/tar"
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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/steam-overseer/steam-overseer/internal/backup"
	"github.com/steam-overseer/steam-overseer/internal/state"
	"github.com/steam-overseer/steam-overseer/testkit"
)

// warName is the first deployment's war in the archives newArchive writes.
const warName = "var/master/model/1/churn.war"

// newArchive backs up a home with two deployments and a state database, and
// returns the archive's path.
func newArchive(t *testing.T) string {
	t.Helper()
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	h.Add(testkit.Spec{Name: "fraud", LogicalName: "fraud"})
	st, err := state.Open(context.Background(), h.Home.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(context.Background(), state.Entry{DeploymentID: 1, Action: state.ActionRestart, Result: state.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	res, err := backup.Create(context.Background(), promslog.NewNopLogger(), backup.Options{
		Home: h.Home, StatePath: h.Home.StatePath(), Output: filepath.Join(t.TempDir(), "steam.tar.gz"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Path
}

// archived is one entry of an archive, read whole.
type archived struct {
	hdr     *tar.Header
	content []byte
}

// readEntries reads every entry of the archive at path.
func readEntries(t *testing.T, path string) []archived {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var entries []archived
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, archived{hdr, b})
	}
}

// rewrite copies the archive src to a new one, letting edit change, drop
// (nil) or add entries. With fixSums, SHA256SUMS and the manifest are
// rewritten to match the new content, as a careful forger would.
func rewrite(t *testing.T, src string, fixSums bool, edit func([]archived) []archived) string {
	t.Helper()
	entries := readEntries(t, src)
	entries = edit(entries)
	if fixSums {
		entries = fixChecksums(t, entries)
	}
	dst := filepath.Join(t.TempDir(), "rewritten.tar.gz")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	gw := gzip.NewWriter(out)
	tw := tar.NewWriter(gw)
	for _, e := range entries {
		e.hdr.Size = int64(len(e.content))
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fixChecksums rewrites the manifest and SHA256SUMS to list every regular
// file of entries as it now is.
func fixChecksums(t *testing.T, entries []archived) []archived {
	var m backup.Manifest
	var files []backup.File
	var kept []archived
	for _, e := range entries {
		switch {
		case e.hdr.Name == backup.ManifestName:
			if err := json.Unmarshal(e.content, &m); err != nil {
				t.Fatal(err)
			}
		case e.hdr.Name == backup.ChecksumsName:
		case e.hdr.Typeflag == tar.TypeReg:
			files = append(files, backup.File{Path: e.hdr.Name, Size: int64(len(e.content)), SHA256: sum(e.content)})
			kept = append(kept, e)
		default:
			kept = append(kept, e)
		}
	}
	m.Files = files
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var sums strings.Builder
	for _, f := range append(files, backup.File{Path: backup.ManifestName, SHA256: sum(body)}) {
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, f.Path)
	}
	return append(kept,
		archived{&tar.Header{Name: backup.ManifestName, Typeflag: tar.TypeReg, Mode: 0o644}, body},
		archived{&tar.Header{Name: backup.ChecksumsName, Typeflag: tar.TypeReg, Mode: 0o644}, []byte(sums.String())})
}

// changeEntry edits the content of the entry called name.
func changeEntry(name string, change func([]byte) []byte) func([]archived) []archived {
	return func(es []archived) []archived {
		for i := range es {
			if es[i].hdr.Name == name {
				es[i].content = change(bytes.Clone(es[i].content))
			}
		}
		return es
	}
}

// dropEntry removes the entry called name.
func dropEntry(name string) func([]archived) []archived {
	return func(es []archived) []archived {
		return slices.DeleteFunc(es, func(e archived) bool { return e.hdr.Name == name })
	}
}

// addEntries appends entries before the manifest.
func addEntries(add ...archived) func([]archived) []archived {
	return func(es []archived) []archived {
		i := slices.IndexFunc(es, func(e archived) bool { return e.hdr.Name == backup.ManifestName })
		return slices.Insert(es, i, add...)
	}
}

func regular(name, content string) archived {
	return archived{&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, []byte(content)}
}

// corruptDB damages a database's pages past the header, so that it still
// opens but fails PRAGMA integrity_check.
func corruptDB(b []byte) []byte {
	for i := 4096 + 8; i < len(b) && i < 3*4096; i += 7 {
		b[i] ^= 0x5a
	}
	return b
}

// badCases are archives that verify and restore must refuse, each with the
// file they must name.
var badCases = []struct {
	name    string
	fixSums bool
	edit    func([]archived) []archived
	wantBad string
}{
	{name: "one byte of a war changed",
		edit:    changeEntry(warName, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }),
		wantBad: warName},
	{name: "a war missing", edit: dropEntry(warName), wantBad: warName},
	{name: "a file no list names", edit: addEntries(regular("var/master/model/9/extra.war", "x")),
		wantBad: "var/master/model/9/extra.war"},
	{name: "SHA256SUMS changed",
		edit: changeEntry(backup.ChecksumsName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(warName), []byte("var/master/model/1/other.war"), 1)
		}),
		wantBad: warName},
	{name: "steam.db corrupt, sums forged to match", fixSums: true,
		edit: changeEntry("var/master/db/steam.db", corruptDB), wantBad: "var/master/db/steam.db"},
	{name: "state database corrupt, sums forged to match", fixSums: true,
		edit: changeEntry("var/master/db/steam-overseer.db", corruptDB), wantBad: "var/master/db/steam-overseer.db"},
	{name: "steam.db missing", fixSums: true, edit: dropEntry("var/master/db/steam.db"),
		wantBad: "var/master/db/steam.db"},
	{name: "path leaving the folder", fixSums: true, edit: addEntries(regular("../escaped.war", "x")),
		wantBad: "../escaped.war"},
	{name: "absolute path", fixSums: true, edit: addEntries(regular("/tmp/escaped.war", "x")),
		wantBad: "/tmp/escaped.war"},
	{name: "a link out of the home", fixSums: true,
		edit:    addEntries(archived{&tar.Header{Name: "var/master/log", Typeflag: tar.TypeSymlink, Linkname: "/outside"}, nil}),
		wantBad: "var/master/log"},
	{name: "a relative link climbing out", fixSums: true,
		edit: addEntries(archived{&tar.Header{Name: "var/master/assets", Typeflag: tar.TypeSymlink,
			Linkname: "../../../../../etc"}, nil}),
		wantBad: "var/master/assets"},
	{name: "a hard link", fixSums: true,
		edit:    addEntries(archived{&tar.Header{Name: "var/master/model/1/hard.war", Typeflag: tar.TypeLink, Linkname: warName}, nil}),
		wantBad: "var/master/model/1/hard.war"},
	{name: "a folder the manifest does not list", fixSums: true,
		edit:    addEntries(archived{&tar.Header{Name: "var/master/log/", Typeflag: tar.TypeDir, Mode: 0o777}, nil}),
		wantBad: "var/master/log"},
	{name: "a war larger than the manifest says",
		edit: editManifest(func(m *backup.Manifest) {
			for i := range m.Files {
				if m.Files[i].Path == warName {
					m.Files[i].Size -= 4
				}
			}
		}),
		wantBad: warName},
}

// then applies edits in order.
func then(edits ...func([]archived) []archived) func([]archived) []archived {
	return func(es []archived) []archived {
		for _, e := range edits {
			es = e(es)
		}
		return es
	}
}

// editManifest changes the manifest and SHA256SUMS' line for it, and
// nothing else.
func editManifest(change func(*backup.Manifest)) func([]archived) []archived {
	return func(es []archived) []archived {
		var old, body []byte
		for i := range es {
			if es[i].hdr.Name == backup.ManifestName {
				var m backup.Manifest
				if err := json.Unmarshal(es[i].content, &m); err != nil {
					panic(err)
				}
				change(&m)
				old = es[i].content
				body, _ = json.Marshal(m)
				es[i].content = body
			}
		}
		for i := range es {
			if es[i].hdr.Name == backup.ChecksumsName {
				es[i].content = bytes.Replace(es[i].content, []byte(sum(old)), []byte(sum(body)), 1)
			}
		}
		return es
	}
}

func TestVerify(t *testing.T) {
	good := newArchive(t)
	t.Run("intact", func(t *testing.T) {
		v, err := backup.Verify(context.Background(), good)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"var/master/db/steam.db", "var/master/db/steam-overseer.db"}
		if !slices.Equal(v.Databases, want) {
			t.Errorf("databases checked %v, want %v", v.Databases, want)
		}
		if v.ListedIn != backup.ChecksumsName {
			t.Errorf("checked against %q, want %s", v.ListedIn, backup.ChecksumsName)
		}
		if len(v.Manifest.Files) != v.Files || v.Files < 4 {
			t.Errorf("%d files verified, manifest lists %d", v.Files, len(v.Manifest.Files))
		}
	})
	t.Run("older archive without SHA256SUMS", func(t *testing.T) {
		v, err := backup.Verify(context.Background(), rewrite(t, good, false, dropEntry(backup.ChecksumsName)))
		if err != nil || v.ListedIn != "the manifest" {
			t.Fatalf("Verify = %v, checked against %q; want the manifest", err, v.ListedIn)
		}
	})
	t.Run("older archive without a folder list", func(t *testing.T) {
		older := rewrite(t, good, false, then(
			addEntries(archived{&tar.Header{Name: "var/master/model/5/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}),
			editManifest(func(m *backup.Manifest) { m.Dirs = nil })))
		if _, err := backup.Verify(context.Background(), older); err != nil {
			t.Fatalf("Verify = %v, want an older archive's folders accepted", err)
		}
	})
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backup.Verify(context.Background(), rewrite(t, good, tc.fixSums, tc.edit))
			var bad *backup.BadFileError
			if !errors.As(err, &bad) || bad.Path != tc.wantBad {
				t.Fatalf("Verify = %v, want it to name %s", err, tc.wantBad)
			}
		})
	}
}

// TestSHA256SUMS: the archive's SHA256SUMS is checkable by sha256sum itself
// after extracting, and covers every file, the manifest too.
func TestSHA256SUMS(t *testing.T) {
	dir := t.TempDir()
	extract(t, newArchive(t), dir)
	cmd := exec.Command(testkit.RequireTool(t, "sha256sum"), "-c", "--strict", backup.ChecksumsName)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	for _, name := range []string{warName, "var/master/db/steam.db", "var/master/db/steam-overseer.db", backup.ManifestName} {
		if !strings.Contains(string(out), name+": OK") {
			t.Errorf("sha256sum did not check %s:\n%s", name, out)
		}
	}
}

func TestRestore(t *testing.T) {
	good := newArchive(t)
	t.Run("into an absent folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "home")
		v, err := backup.Restore(context.Background(), good, dir)
		if err != nil {
			t.Fatal(err)
		}
		// Every file the manifest lists is restored, with its sum.
		for _, f := range v.Manifest.Files {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
			if err != nil || sum(b) != f.SHA256 {
				t.Errorf("restored %s: sha256 %s (%v), want %s", f.Path, sum(b), err, f.SHA256)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, backup.ManifestName)); err == nil {
			t.Error("the manifest was restored into the home")
		}
	})
	t.Run("into an empty folder", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := backup.Restore(context.Background(), good, dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, warName)); err != nil {
			t.Error(err)
		}
	})
	t.Run("into a folder that holds something", func(t *testing.T) {
		dir := t.TempDir()
		keep := filepath.Join(dir, "keep")
		if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := backup.Restore(context.Background(), good, dir)
		if !errors.Is(err, backup.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "keep") {
			t.Errorf("Restore = %v, want it refused naming what the folder holds", err)
		}
		if es, _ := os.ReadDir(dir); len(es) != 1 {
			t.Errorf("the folder holds %d entries after the refusal, want only its own", len(es))
		}
	})
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "home")
			_, err := backup.Restore(context.Background(), rewrite(t, good, tc.fixSums, tc.edit), dir)
			var bad *backup.BadFileError
			if !errors.As(err, &bad) || bad.Path != tc.wantBad {
				t.Errorf("Restore = %v, want it to name %s", err, tc.wantBad)
			}
			// Nothing is left: not the folder it created, not a file
			// beside it.
			if es, _ := os.ReadDir(parent); len(es) != 0 {
				t.Errorf("a failed restore left %v", names(es))
			}
		})
	}
	t.Run("a link out of the folder, then a file through it", func(t *testing.T) {
		parent := t.TempDir()
		outside := t.TempDir()
		archive := rewrite(t, good, true, addEntries(
			archived{&tar.Header{Name: "var/master/model/7", Typeflag: tar.TypeSymlink, Linkname: outside}, nil},
			regular("var/master/model/7/evil.war", "x")))
		_, err := backup.Restore(context.Background(), archive, filepath.Join(parent, "home"))
		if err == nil {
			t.Fatal("Restore wrote through a link leading out of the folder")
		}
		if es, _ := os.ReadDir(outside); len(es) != 0 {
			t.Errorf("restore wrote %v outside the folder", names(es))
		}
		if es, _ := os.ReadDir(parent); len(es) != 0 {
			t.Errorf("a failed restore left %v", names(es))
		}
	})
}
