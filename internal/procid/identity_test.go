package procid_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steam-overseer/steam-overseer/internal/procid"
)

func TestIdentityMatches(t *testing.T) {
	const (
		runner = "/opt/steam/var/master/assets/jetty-runner.jar"
		war    = "/opt/steam/var/master/model/3/churn.war"
		pyWar  = "/opt/steam/var/master/model/3/churn_py.war"
	)
	id := procid.Identity{JettyRunner: runner, Port: 8080, Wars: []string{war, pyWar}}
	for _, tc := range []struct {
		name string
		argv string // space-separated
		cwd  string
		want bool
	}{
		{name: "Steam's exact argv", argv: "java -jar " + runner + " --port 8080 " + war, want: true},
		{name: "python preprocessing war", argv: "java -jar " + runner + " --port 8080 " + pyWar, want: true},
		{name: "java by absolute path", argv: "/usr/lib/jvm/bin/java -jar " + runner + " --port 8080 " + war, want: true},
		{name: "jvm options before -jar", argv: "java -Xmx2g -Dfile.encoding=UTF-8 -jar " + runner + " --port 8080 " + war, want: true},
		{name: "--port=N", argv: "java -jar " + runner + " --port=8080 " + war, want: true},
		{name: "other runner options", argv: "java -jar " + runner + " --host 0.0.0.0 --port 8080 --path / " + war, want: true},
		{name: "unclean paths", argv: "java -jar /opt/steam/var/master/../master/assets/jetty-runner.jar --port 8080 /opt/steam/var/master/model/3//churn.war", want: true},
		{name: "relative paths with cwd", argv: "java -jar var/master/assets/jetty-runner.jar --port 8080 var/master/model/3/churn.war", cwd: "/opt/steam", want: true},
		{name: "relative paths, cwd unknown", argv: "java -jar var/master/assets/jetty-runner.jar --port 8080 var/master/model/3/churn.war", want: false},
		{name: "relative paths, other cwd", argv: "java -jar var/master/assets/jetty-runner.jar --port 8080 var/master/model/3/churn.war", cwd: "/srv/steam", want: false},
		{name: "wrong port", argv: "java -jar " + runner + " --port 8081 " + war, want: false},
		{name: "port with leading zero", argv: "java -jar " + runner + " --port 08080 " + war, want: false},
		{name: "no port", argv: "java -jar " + runner + " " + war, want: false},
		{name: "port without value", argv: "java -jar " + runner + " " + war + " --port", want: false},
		{name: "wrong war", argv: "java -jar " + runner + " --port 8080 /opt/steam/var/master/model/3/other.war", want: false},
		{name: "another model's war", argv: "java -jar " + runner + " --port 8080 /opt/steam/var/master/model/4/churn.war", want: false},
		{name: "two wars", argv: "java -jar " + runner + " --port 8080 " + war + " " + pyWar, want: false},
		{name: "no war", argv: "java -jar " + runner + " --port 8080", want: false},
		{name: "other home's jetty-runner", argv: "java -jar /srv/steam/var/master/assets/jetty-runner.jar --port 8080 " + war, want: false},
		{name: "other jar", argv: "java -jar /opt/steam/var/master/assets/other.jar --port 8080 " + war, want: false},
		{name: "main class instead of -jar", argv: "java -cp " + runner + " org.eclipse.jetty.runner.Runner --port 8080 " + war, want: false},
		{name: "-jar without jar", argv: "java -Xmx1g -Xms1g -Dx=y -jar", want: false},
		{name: "not java", argv: "python3 -jar " + runner + " --port 8080 " + war, want: false},
		{name: "java as a suffix only", argv: "notjava -jar " + runner + " --port 8080 " + war, want: false},
		{name: "sleep", argv: "sleep 600", want: false},
		{name: "kernel thread (empty argv)", argv: "", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var argv []string
			if tc.argv != "" {
				argv = strings.Split(tc.argv, " ")
			}
			cwdCalls := 0
			cwd := func() string { cwdCalls++; return tc.cwd }
			if got := id.Matches(argv, cwd); got != tc.want {
				t.Errorf("Matches(%q) = %v, want %v", tc.argv, got, tc.want)
			}
			if !strings.Contains(tc.argv, " var/") && cwdCalls > 0 {
				t.Errorf("cwd read %d times for absolute paths", cwdCalls)
			}
		})
	}
}

func TestZeroIdentityMatchesNothing(t *testing.T) {
	for _, argv := range [][]string{
		{"java", "-jar", ".", "--port", "0", "."},
		{"java", "-jar", "", "--port", "0", ""},
	} {
		if (procid.Identity{}).Matches(argv, func() string { return "" }) {
			t.Errorf("the zero Identity matched %q", argv)
		}
	}
}

// TestIdentityMatchesSameFile checks paths spelled differently from the
// identity's: a home reached through a symbolic link is the same home, a
// home with the same layout elsewhere is not.
func TestIdentityMatchesSameFile(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "steam-1.1.6")
	other := filepath.Join(root, "other")
	for _, home := range []string{real, other} {
		for _, f := range []string{"var/master/assets/jetty-runner.jar", "var/master/model/3/churn.war", "var/master/model/4/churn.war"} {
			path := filepath.Join(home, f)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := filepath.Join(root, "steam")
	if err := os.Symlink("steam-1.1.6", link); err != nil {
		t.Fatal(err)
	}
	// A war that is itself a link, as operators keep versions.
	if err := os.Symlink(filepath.Join(real, "var/master/model/3/churn.war"), filepath.Join(real, "var/master/model/3/current.war")); err != nil {
		t.Fatal(err)
	}
	identity := func(home string) procid.Identity {
		return procid.Identity{JettyRunner: filepath.Join(home, "var/master/assets/jetty-runner.jar"), Port: 8080,
			Wars: []string{filepath.Join(home, "var/master/model/3/churn.war"), filepath.Join(home, "var/master/model/3/churn_py.war")}}
	}
	argv := func(home, war string) []string {
		return []string{"java", "-jar", filepath.Join(home, "var/master/assets/jetty-runner.jar"), "--port", "8080", filepath.Join(home, war)}
	}
	for _, tc := range []struct {
		name string
		id   procid.Identity
		argv []string
		cwd  string
		want bool
	}{
		{name: "argv real, identity through the link", id: identity(link), argv: argv(real, "var/master/model/3/churn.war"), want: true},
		{name: "argv through the link, identity real", id: identity(real), argv: argv(link, "var/master/model/3/churn.war"), want: true},
		{name: "argv through a parent's spelling", id: identity(real), argv: argv(link+"/../steam", "var/master/model/3/churn.war"), want: true},
		{name: "relative argv, cwd real, identity through the link", id: identity(link),
			argv: []string{"java", "-jar", "var/master/assets/jetty-runner.jar", "--port", "8080", "var/master/model/3/churn.war"}, cwd: real, want: true},
		{name: "another model's war of the same name", id: identity(link), argv: argv(real, "var/master/model/4/churn.war"), want: false},
		{name: "another home with the same layout", id: identity(link), argv: argv(other, "var/master/model/3/churn.war"), want: false},
		{name: "another home, identity real", id: identity(real), argv: argv(other, "var/master/model/3/churn.war"), want: false},
		{name: "a link to the war under another name", id: identity(real), argv: argv(real, "var/master/model/3/current.war"), want: false},
		{name: "missing war of the same name", id: identity(link), argv: argv(real, "var/master/model/3/churn_py.war"), want: false},
		{name: "wrong port through the link", id: identity(link),
			argv: []string{"java", "-jar", filepath.Join(real, "var/master/assets/jetty-runner.jar"), "--port", "8081", filepath.Join(real, "var/master/model/3/churn.war")}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.Matches(tc.argv, func() string { return tc.cwd }); got != tc.want {
				t.Errorf("Matches(%q) against %+v = %v, want %v", tc.argv, tc.id, got, tc.want)
			}
		})
	}
}
