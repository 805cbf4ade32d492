// Package steamoverseer holds the files that the binary carries with it: the
// Steam schema its demo builds a throwaway home from, and the Java sources
// of its real-Jetty mode. They live at the top of the
// repository because that is where operators and tests read them from disk too.
package steamoverseer

import "embed"

// SteamSchema creates the tables of an H2O Steam 1.1.x database that
// steam-overseer reads and writes. It is the schema every test and the demo
// build their Steam homes from.
//
//go:embed testdata/steam-schema.sql
var SteamSchema string

// JettySources are the Java sources of a jetty-runner launcher and a
// scoring war (testdata/jetty), compiled against Debian's Jetty by the tests
// and by the demo's --jetty mode, from a checkout or an installed binary.
//
//go:embed testdata/jetty
var JettySources embed.FS
