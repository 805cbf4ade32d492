// Package procid proves a PID is a given deployment's java before measuring
// or signalling it: after a crash or reboot the PID may be anyone's.
package procid

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Identity is a deployment's java as Steam starts it: java [jvm options]
// -jar <home>/var/master/assets/jetty-runner.jar --port <port> <war>
type Identity struct {
	JettyRunner string // absolute path of the home's jetty-runner.jar
	Port        int
	Wars        []string // absolute paths: <logical_name>.war or <logical_name>_py.war
}

// Matches resolves relative paths against cwd (asked only when needed) and
// matches a path by spelling or by file (a symlinked home).
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
