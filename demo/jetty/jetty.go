// Package jetty builds real Steam deployments: a jetty-runner.jar on
// Debian's Jetty 9.4 and scoring wars compiled with javac from the embedded
// sources, for the tests and the demo's --jetty mode.
package jetty

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	steamoverseer "github.com/steam-overseer/steam-overseer"
	"github.com/steam-overseer/steam-overseer/internal/steam"
)

// JavaDir is where Debian installs the jars the runner needs.
const JavaDir = "/usr/share/java"

// classPath uses Debian's unversioned jar names, so updates do not break it.
var classPath = []string{
	"jetty9-server.jar", "jetty9-http.jar", "jetty9-io.jar", "jetty9-util.jar", "jetty9-webapp.jar",
	"jetty9-servlet.jar", "jetty9-security.jar", "jetty9-xml.jar", "servlet-api.jar",
}

// Packages are the Debian packages the kit needs.
const Packages = "libjetty9-java openjdk-17-jdk-headless"

// ErrMissing is wrapped by the errors naming what is not installed.
var ErrMissing = errors.New("install Debian's " + strings.ReplaceAll(Packages, " ", " and "))

const (
	ModeNormal    = "normal"
	ModeSlowStart = "slow_start" // init sleeps StartDelay before Jetty is started
	ModeHang      = "hang"       // every request blocks forever
	ModeInitFail  = "init_fail"  // init throws: the context is unavailable, requests get 503
	ModeFillHeap  = "fill_heap"  // from the first request a thread keeps the heap 94% full: GC runs back to back
)

// War is how a scoring war behaves.
type War struct {
	Mode       string
	StartDelay time.Duration // for ModeSlowStart
}

// Kit is the compiled runner and scorer.
type Kit struct {
	Runner  string
	Java    string
	classes string // the scorer's compiled classes
	webXML  []byte
}

type tools struct {
	javac, java string
	jars        []string
}

func findTools() (tools, error) {
	var t tools
	var err error
	if t.javac, err = exec.LookPath("javac"); err != nil {
		return t, fmt.Errorf("javac is not installed: %w", ErrMissing)
	}
	if t.java, err = exec.LookPath("java"); err != nil {
		return t, fmt.Errorf("java is not installed: %w", ErrMissing)
	}
	for _, j := range classPath {
		p := filepath.Join(JavaDir, j)
		if _, err := os.Stat(p); err != nil {
			return t, fmt.Errorf("%s (Jetty) is not installed: %w", p, ErrMissing)
		}
		t.jars = append(t.jars, p)
	}
	return t, nil
}

// Check says whether a kit can be built here.
func Check() error {
	_, err := findTools()
	return err
}

// Build compiles the embedded sources and jetty-runner.jar into dir.
func Build(dir string) (*Kit, error) {
	t, err := findTools()
	if err != nil {
		return nil, err
	}
	src := filepath.Join(dir, "src")
	if err := os.CopyFS(src, steamoverseer.JettySources); err != nil {
		return nil, fmt.Errorf("writing the Java sources: %w", err)
	}
	src = filepath.Join(src, "testdata", "jetty")
	k := &Kit{Runner: filepath.Join(dir, "jetty-runner.jar"), Java: t.java, classes: filepath.Join(dir, "scorer")}
	runnerClasses := filepath.Join(dir, "runner")
	for _, c := range []struct{ out, src string }{
		{runnerClasses, filepath.Join(src, "runner", "JettyRunner.java")},
		{k.classes, filepath.Join(src, "scorer", "ScoringServlet.java")},
	} {
		cmd := exec.Command(t.javac, "-nowarn", "-d", c.out, "-cp", strings.Join(t.jars, ":"), c.src)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("javac %s: %v\n%s", c.src, err, out)
		}
	}
	if k.webXML, err = fs.ReadFile(steamoverseer.JettySources, "testdata/jetty/scorer/web.xml"); err != nil {
		return nil, fmt.Errorf("reading the scorer's web.xml: %w", err)
	}

	// Absolute Class-Path entries make the jar work wherever it is laid.
	manifest := "Manifest-Version: 1.0\nMain-Class: JettyRunner\nClass-Path: " + strings.Join(t.jars, " ") + "\n"
	files := map[string][]byte{"META-INF/MANIFEST.MF": []byte(wrapManifest(manifest))}
	if err := addClasses(files, runnerClasses, ""); err != nil {
		return nil, err
	}
	if err := writeZip(k.Runner, []string{"META-INF/MANIFEST.MF"}, files); err != nil {
		return nil, fmt.Errorf("writing jetty-runner.jar: %w", err)
	}
	return k, nil
}

// Install lays the runner into home as var/master/assets/jetty-runner.jar.
func (k *Kit) Install(home steam.Home) error {
	b, err := os.ReadFile(k.Runner)
	if err != nil {
		return fmt.Errorf("reading jetty-runner.jar: %w", err)
	}
	if err := os.WriteFile(home.JettyRunner(), b, 0o644); err != nil {
		return fmt.Errorf("installing jetty-runner.jar: %w", err)
	}
	return nil
}

// Env puts the JVMs' temp folder, which a killed JVM leaves behind, under
// tmpDir; JAVA_TOOL_OPTIONS keeps Steam's argv as it is.
func Env(tmpDir string) ([]string, error) {
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the JVMs' temp folder: %w", err)
	}
	return append(os.Environ(), "JAVA_TOOL_OPTIONS=-Djava.io.tmpdir="+tmpDir), nil
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

// zipTo writes first's names first: a jar's manifest must lead.
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

// wrapManifest folds lines at 72 bytes, as the jar format requires.
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
