// Package steamoverseer holds the files that the binary carries with it: the
// Steam schema its demo builds a throwaway home from, and the shipped alert
// rules the demo loads into a real Prometheus. They live at the top of the
// repository because that is where operators and tests read them from disk too.
package steamoverseer

import _ "embed"

// SteamSchema creates the tables of an H2O Steam 1.1.x database that
// steam-overseer reads and writes. It is the schema every test and the demo
// build their Steam homes from.
//
//go:embed testdata/steam-schema.sql
var SteamSchema string
