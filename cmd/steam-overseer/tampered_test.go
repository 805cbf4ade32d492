package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/testkit"
)

// appendEntries copies the archive src to a new one with entries appended
// after its last, as a forger who cannot rewrite the lists would; a nil
// content of a regular entry is size bytes of zeros.
func appendEntries(t *testing.T, src string, extra ...*tar.Header) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	gr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "tampered.tar.gz")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	gw := gzip.NewWriter(out)
	tw := tar.NewWriter(gw)
	tr := tar.NewReader(gr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	zeros := make([]byte, 1<<20)
	for _, hdr := range extra {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		for n := hdr.Size; n > 0; n -= int64(len(zeros)) {
			if _, err := tw.Write(zeros[:min(n, int64(len(zeros)))]); err != nil {
				t.Fatal(err)
			}
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

// TestTamperedArchiveRefused: entries appended to a good archive that its
// lists do not account for fail `backup verify` and are never written by
// `restore`: links out of the home (the next remediation would have
// written a deployment log through one), and a big unlisted file, which
// restore must refuse before writing a byte of it (a file size limit of
// 8 MiB on the restore shows it).
func TestTamperedArchiveRefused(t *testing.T) {
	t.Parallel()
	h := testkit.NewHome(t)
	h.Add(testkit.Spec{Name: "churn", LogicalName: "churn"})
	good := filepath.Join(t.TempDir(), "steam.tar.gz")
	if code, _, stderr := runBinary(t, "backup", "--steam.home="+h.Home.Dir, "--output="+good); code != 0 {
		t.Fatalf("backup exited %d:\n%s", code, stderr)
	}
	outside := t.TempDir()
	for _, tc := range []struct {
		name    string
		extra   []*tar.Header
		wantBad string
		limit   bool // restore under a file size limit below the extra file
	}{
		{name: "links out of the home", extra: []*tar.Header{
			{Name: "var/master/log", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "var/master/assets", Typeflag: tar.TypeSymlink, Linkname: "../../../../../etc"},
		}, wantBad: "var/master/log: is a symbolic link"},
		{name: "a hard link", extra: []*tar.Header{
			{Name: "var/master/db/copy.db", Typeflag: tar.TypeLink, Linkname: "var/master/db/steam.db"},
		}, wantBad: "var/master/db/copy.db: is a hard link"},
		{name: "an unlisted folder", extra: []*tar.Header{
			{Name: "var/master/log/", Typeflag: tar.TypeDir, Mode: 0o777},
		}, wantBad: "var/master/log: is a folder the manifest does not list"},
		{name: "a big unlisted file", extra: []*tar.Header{
			{Name: "var/master/log/big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 64 << 20},
		}, wantBad: "var/master/log/big: is not listed", limit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive := appendEntries(t, good, tc.extra...)
			code, out, stderr := runBinary(t, "backup", "verify", archive)
			if code != 1 || !isFailureSentence(stderr, tc.wantBad) {
				t.Errorf("verify exited %d, want 1 with %q:\n%s%s", code, tc.wantBad, out, stderr)
			}

			parent := t.TempDir()
			args := []string{testkit.Binary(t), "restore", archive, "--steam.home=" + filepath.Join(parent, "home")}
			if tc.limit {
				args = append([]string{"prlimit", "--fsize=8388608", "--"}, args...)
			}
			cmd := exec.Command(args[0], args[1:]...)
			var errOut strings.Builder
			cmd.Stderr = &errOut
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !isFailureSentence(errOut.String(), tc.wantBad) {
				t.Errorf("restore: %v, want exit 1 with %q:\n%s", err, tc.wantBad, errOut.String())
			}
			if es, _ := os.ReadDir(parent); len(es) != 0 {
				t.Errorf("a refused restore left %d entries", len(es))
			}
			if es, _ := os.ReadDir(outside); len(es) != 0 {
				t.Errorf("restore wrote %d entries outside the home", len(es))
			}
		})
	}
}
