// Package jettytest gives tests real Steam deployments: a jetty-runner.jar
// that starts Debian's Jetty 9.4 (the line Steam's jetty-runner belongs to)
// and scoring wars whose servlet answers /ping, /predict and /stats, both
// compiled from testdata/jetty with javac once per test binary. They are
// laid into a steamtest home, where deployments are started with Steam's
// exact argv under the real java, so tests see a JVM's start time, Jetty's
// own log lines and Jetty's ways of failing.
package jettytest

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/steamtest"
)

// JavaDir is where Debian installs the jars the runner needs.
const JavaDir = "/usr/share/java"

// classPath is what jetty-runner.jar's manifest points at: Jetty's server,
// webapp and their dependencies (libjetty9-java) and the servlet API
// (libservlet-api-java), by their unversioned names so that a Debian update
// does not break it.
var classPath = []string{
	"jetty9-server.jar", "jetty9-http.jar", "jetty9-io.jar", "jetty9-util.jar", "jetty9-webapp.jar",
	"jetty9-servlet.jar", "jetty9-security.jar", "jetty9-xml.jar", "servlet-api.jar",
}

// Packages are the Debian packages the kit needs, for error messages and CI.
const Packages = "default-jdk-headless libjetty9-java libservlet-api-java"

// Modes of a scoring war (see testdata/jetty/scorer/ScoringServlet.java).
const (
	ModeNormal    = "normal"
	ModeSlowStart = "slow_start" // init sleeps StartDelay before Jetty is started
	ModeHang      = "hang"       // every request blocks forever
	ModeInitFail  = "init_fail"  // init throws: the context is unavailable, requests get 503
)

// War is how a scoring war behaves.
type War struct {
	Mode       string
	StartDelay time.Duration // for ModeSlowStart
}

// Kit is the compiled runner and scorer.
type Kit struct {
	// Runner is the built jetty-runner.jar.
	Runner string
	// Java is the real java that runs it.
	Java    string
	classes string // the scorer's compiled classes
	webXML  []byte
}

// Build compiles testdata/jetty into dir and assembles jetty-runner.jar.
func Build(dir string) (*Kit, error) {
	javac, err := exec.LookPath("javac")
	if err != nil {
		return nil, fmt.Errorf("javac is not installed (%v): install Debian's %s", err, Packages)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("java is not installed (%v): install Debian's %s", err, Packages)
	}
	var jars []string
	for _, j := range classPath {
		p := filepath.Join(JavaDir, j)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("jar missing (%v): install Debian's %s", err, Packages)
		}
		jars = append(jars, p)
	}
	src := filepath.Join(steamtest.RepoRoot(), "testdata", "jetty")
	k := &Kit{Runner: filepath.Join(dir, "jetty-runner.jar"), Java: java, classes: filepath.Join(dir, "scorer")}
	runnerClasses := filepath.Join(dir, "runner")
	for _, c := range []struct{ out, src string }{
		{runnerClasses, filepath.Join(src, "runner", "JettyRunner.java")},
		{k.classes, filepath.Join(src, "scorer", "ScoringServlet.java")},
	} {
		cmd := exec.Command(javac, "-nowarn", "-d", c.out, "-cp", strings.Join(jars, ":"), c.src)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("javac %s: %v\n%s", c.src, err, out)
		}
	}
	if k.webXML, err = os.ReadFile(filepath.Join(src, "scorer", "web.xml")); err != nil {
		return nil, fmt.Errorf("reading the scorer's web.xml: %w", err)
	}

	// Class-Path entries are URLs relative to the jar; absolute paths make
	// the jar work from wherever a test lays it.
	manifest := "Manifest-Version: 1.0\nMain-Class: JettyRunner\nClass-Path: " + strings.Join(jars, " ") + "\n"
	files := map[string][]byte{"META-INF/MANIFEST.MF": []byte(wrapManifest(manifest))}
	if err := addClasses(files, runnerClasses, ""); err != nil {
		return nil, err
	}
	if err := writeZip(k.Runner, []string{"META-INF/MANIFEST.MF"}, files); err != nil {
		return nil, fmt.Errorf("writing jetty-runner.jar: %w", err)
	}
	return k, nil
}

var kit struct {
	once sync.Once
	kit  *Kit
	err  error
}

// Get builds the kit once per test binary, into a temp folder that outlives
// every test of it.
func Get(t testing.TB) *Kit {
	t.Helper()
	kit.once.Do(func() {
		dir, err := os.MkdirTemp("", "steam-overseer-jetty-")
		if err != nil {
			kit.err = err
			return
		}
		kit.kit, kit.err = Build(dir)
	})
	if kit.err != nil {
		t.Fatal(kit.err)
	}
	return kit.kit
}

// WarBytes returns a war (a zip) of the scorer that behaves as w says.
func (k *Kit) WarBytes(w War) ([]byte, error) {
	mode := w.Mode
	if mode == "" {
		mode = ModeNormal
	}
	props := fmt.Sprintf("mode=%s\nstart_delay_ms=%d\n", mode, w.StartDelay.Milliseconds())
	files := map[string][]byte{
		"WEB-INF/web.xml":           k.webXML,
		"WEB-INF/scorer.properties": []byte(props),
	}
	if err := addClasses(files, k.classes, "WEB-INF/classes/"); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := zipTo(&buf, nil, files); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteWar writes the war w to path.
func (k *Kit) WriteWar(path string, w War) error {
	b, err := k.WarBytes(w)
	if err != nil {
		return fmt.Errorf("building war %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing war: %w", err)
	}
	return nil
}

// addClasses adds every file under dir to files, named prefix + its path.
func addClasses(files map[string][]byte, dir, prefix string) error {
	return filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading compiled class: %w", err)
		}
		files[prefix+filepath.ToSlash(rel)] = b
		return nil
	})
}

func writeZip(path string, first []string, files map[string][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := zipTo(f, first, files); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// zipTo writes files as a zip, the names in first ahead of the others (a
// jar's manifest must come first).
func zipTo(w io.Writer, first []string, files map[string][]byte) error {
	z := zip.NewWriter(w)
	names := append([]string(nil), first...)
	for name := range files {
		if !slices.Contains(first, name) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		f, err := z.Create(name)
		if err != nil {
			return err
		}
		if _, err := f.Write(files[name]); err != nil {
			return err
		}
	}
	return z.Close()
}

// wrapManifest folds a manifest's lines at 72 bytes, continuation lines
// starting with a space, as the jar format requires.
func wrapManifest(m string) string {
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(m, "\n"), "\n") {
		for len(line) > 72 {
			out.WriteString(line[:72] + "\n")
			line = " " + line[72:]
		}
		out.WriteString(line + "\n")
	}
	return out.String()
}
