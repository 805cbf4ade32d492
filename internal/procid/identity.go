// Package procid decides whether a PID really is a given Steam deployment's
// java process, and measures it only then: after a crash or a reboot a
// recorded PID may belong to any program.
package procid

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Identity is what a deployment's java process looks like on its command
// line, as Steam starts it:
//
//	java [jvm options] -jar <home>/var/master/assets/jetty-runner.jar --port <port> <war>
type Identity struct {
	// JettyRunner is the absolute path of the Steam home's jetty-runner.jar.
	JettyRunner string
	// Port is the deployment's port.
	Port int
	// Wars are the absolute paths of the wars the deployment may run (Steam
	// names a model's war <logical_name>.war or <logical_name>_py.war).
	Wars []string
}

// Matches reports whether argv is java running this identity. Relative paths
// are resolved against cwd, asked for only when one is met; "" (unknown)
// makes a relative path never match. Paths match by spelling or else by
// naming the same file, so a home reached through a symbolic link is one home.
func (id Identity) Matches(argv []string, cwd func() string) bool {
	if len(argv) < 5 || filepath.Base(argv[0]) != "java" {
		return false
	}
	jar := -1
	for i, a := range argv[1:] {
		if a == "-jar" {
			jar = i + 1
			break
		}
		if !strings.HasPrefix(a, "-") { // a main class instead of -jar
			return false
		}
	}
	if jar < 0 || jar+1 >= len(argv) {
		return false
	}
	// The port first: it rules out the home's other deployments cheaply.
	port, war, ok := parseRunnerArgs(argv[jar+2:])
	if !ok || port != strconv.Itoa(id.Port) {
		return false
	}
	var dir string
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		if dir == "" {
			if dir = cwd(); dir == "" {
				return ""
			}
		}
		return filepath.Join(dir, p)
	}
	if !sameFile(abs(argv[jar+1]), id.JettyRunner) {
		return false
	}
	war = abs(war)
	for _, w := range id.Wars {
		if sameFile(war, w) {
			return true
		}
	}
	return false
}

// sameFile reports whether got, a cleaned absolute path from a command line,
// names the file want. Equal strings settle it without a syscall; otherwise,
// if the base names agree, both are looked up (device and inode), so a
// look-alike in another home does not match.
func sameFile(got, want string) bool {
	if got == "" || want == "" {
		return false
	}
	want = filepath.Clean(want)
	if got == want {
		return true
	}
	if filepath.Base(got) != filepath.Base(want) {
		return false
	}
	a, err := os.Stat(got)
	if err != nil {
		return false
	}
	b, err := os.Stat(want)
	return err == nil && os.SameFile(a, b)
}

// parseRunnerArgs reads jetty-runner's arguments: options of the form
// "--name value" (or "--port=N") and exactly one war.
func parseRunnerArgs(args []string) (port, war string, ok bool) {
	var wars int
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--port="):
			port = strings.TrimPrefix(a, "--port=")
		case strings.HasPrefix(a, "--"):
			if i+1 >= len(args) {
				return "", "", false
			}
			if a == "--port" {
				port = args[i+1]
			}
			i++
		default:
			war = a
			wars++
		}
	}
	return port, war, wars == 1 && port != ""
}
