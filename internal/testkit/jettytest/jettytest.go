// Package jettytest gives tests real Steam deployments: a jetty-runner.jar
// that starts Debian's Jetty 9.4 (the line Steam's jetty-runner belongs to)
// and scoring wars whose servlet answers /ping, /predict and /stats, both
// compiled from testdata/jetty with javac once per test binary (by package
// jetty, which the demo uses too). They are laid into a steamtest home,
// where deployments are started with Steam's exact argv under the real
// java, so tests see a JVM's start time, Jetty's own log lines and Jetty's
// ways of failing.
package jettytest

import (
	"os"
	"sync"
	"testing"

	"github.com/steam-overseer/steam-overseer/demo/jetty"
)

// Aliases of package jetty, which builds the kit without a testing.TB.
const (
	JavaDir  = jetty.JavaDir
	Packages = jetty.Packages

	ModeNormal    = jetty.ModeNormal
	ModeSlowStart = jetty.ModeSlowStart
	ModeHang      = jetty.ModeHang
	ModeInitFail  = jetty.ModeInitFail
)

type (
	// War is how a scoring war behaves.
	War = jetty.War
	// Kit is the compiled runner and scorer.
	Kit = jetty.Kit
)

// Build compiles testdata/jetty into dir and assembles jetty-runner.jar.
func Build(dir string) (*Kit, error) { return jetty.Build(dir) }

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
